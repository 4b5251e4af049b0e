"""One-time keys of create forms, so a double click or a resubmitted form has one effect; and a
PIN on member cards, for residents who have no phone to receive a counter code."""

import datetime

from peewee import CharField, DateTimeField, ForeignKeyField, IntegerField, Model


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Staff(Base):
        class Meta:
            table_name = "staff"

    class FormSubmission(Base):
        key = CharField(max_length=40, unique=True)
        staff = ForeignKeyField(Staff)
        action = CharField(max_length=40)
        result = IntegerField(null=True)
        created_at = DateTimeField(default=datetime.datetime.utcnow)

    db.create_tables([FormSubmission])
    migrator.migrate(
        migrator.add_column("member_card", "pin_hash", CharField(max_length=200, null=True)),
        migrator.add_column("member_card", "pin_failures", IntegerField(default=0)),
    )
