"""Each community's own kinds of problem (names, time limits, points, first handler), and the
photos residents send with a report."""

import datetime

from peewee import BlobField, BooleanField, CharField, DateTimeField, ForeignKeyField, IntegerField, Model


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

    Community, Resident, Staff, Case = (existing(n) for n in ("community", "resident", "staff", "case"))

    class CaseKind(Base):
        community = ForeignKeyField(Community)
        code = CharField(max_length=20)
        position = IntegerField()
        name_zh = CharField(max_length=8)
        name_en = CharField(max_length=30, default="")
        accept_hours = IntegerField()
        handle_hours = IntegerField()
        verify_hours = IntegerField()
        points = IntegerField(default=0)
        handler = ForeignKeyField(Staff, null=True)
        active = BooleanField(default=True)
        updated_at = DateTimeField(default=datetime.datetime.utcnow)

        class Meta:
            indexes = ((("community", "code"), True),)

    class Photo(Base):
        resident = ForeignKeyField(Resident)
        case = ForeignKeyField(Case, null=True, index=True)
        data = BlobField()
        created_at = DateTimeField(default=datetime.datetime.utcnow)

    db.create_tables([CaseKind, Photo])
