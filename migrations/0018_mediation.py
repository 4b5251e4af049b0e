"""Mediation (近邻评理室): appointed mediators, the disputes they mediate, and who sat on each."""

import datetime

from peewee import BooleanField, CharField, DateTimeField, ForeignKeyField, Model, TextField


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

    Community, Resident, Staff, Transfer, Case = (
        existing(n) for n in ("community", "resident", "staff", "transfer", "case"))

    class Mediator(Base):
        community = ForeignKeyField(Community, index=True)
        resident = ForeignKeyField(Resident, null=True)
        staff = ForeignKeyField(Staff, null=True)
        active = BooleanField(default=True)
        appointed_by = ForeignKeyField(Staff, null=True)
        created_at = DateTimeField(default=datetime.datetime.utcnow)

    class Mediation(Base):
        community = ForeignKeyField(Community, index=True)
        source = CharField(max_length=12)
        case = ForeignKeyField(Case, null=True)
        summary = CharField(max_length=300)
        parties = TextField()
        private = BooleanField(default=False)
        state = CharField(max_length=8, default="open")
        due_at = DateTimeField()
        outcome = CharField(max_length=12, default="")
        terms = CharField(max_length=500, default="")
        carry_out_by = DateTimeField(null=True)
        follow_up_on = DateTimeField(null=True)
        followed_up_at = DateTimeField(null=True)
        follow_up_note = CharField(max_length=300, default="")
        created_by = ForeignKeyField(Staff)
        created_at = DateTimeField(default=datetime.datetime.utcnow)
        closed_at = DateTimeField(null=True)

    class MediationSeat(Base):
        mediation = ForeignKeyField(Mediation, index=True)
        mediator = ForeignKeyField(Mediator)
        stepped_aside = BooleanField(default=False)
        reason = CharField(max_length=200, default="")
        transfer = ForeignKeyField(Transfer, null=True)

        class Meta:
            indexes = ((("mediation", "mediator"), True),)

    db.create_tables([Mediator, Mediation, MediationSeat])
