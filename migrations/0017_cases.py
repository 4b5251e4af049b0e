"""Cases (事事有回音): what residents report, each step with a time limit, and its history."""

import datetime

from peewee import CharField, DateTimeField, ForeignKeyField, IntegerField, Model


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    def existing(name):
        class Existing(Base):
            class Meta:
                table_name = name

        return Existing

    Community, Resident, Staff, Transfer = (existing(n) for n in ("community", "resident", "staff", "transfer"))

    class Case(Base):
        community = ForeignKeyField(Community, index=True)
        reporter = ForeignKeyField(Resident, index=True)
        reported_by = ForeignKeyField(Staff, null=True)
        category = CharField(max_length=20)
        text = CharField(max_length=300)
        place = CharField(max_length=80, default="")
        state = CharField(max_length=12, default="received", index=True)
        assignee = ForeignKeyField(Staff, null=True, index=True)
        due_at = DateTimeField()
        step_started_at = DateTimeField(default=datetime.datetime.utcnow)
        duplicate_of = ForeignKeyField("self", null=True)
        reason = CharField(max_length=300, default="")
        points = IntegerField(default=0)
        transfer = ForeignKeyField(Transfer, null=True)
        reopened = IntegerField(default=0)
        created_at = DateTimeField(default=datetime.datetime.utcnow)
        closed_at = DateTimeField(null=True)

    class CaseEvent(Base):
        case = ForeignKeyField(Case, index=True)
        action = CharField(max_length=20)
        staff = ForeignKeyField(Staff, null=True)
        detail = CharField(max_length=300, default="")
        created_at = DateTimeField(default=datetime.datetime.utcnow)

    db.create_tables([Case, CaseEvent])
