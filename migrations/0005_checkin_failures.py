"""Wrong check-in codes, counted so that a code cannot be guessed."""

import datetime

from peewee import DateTimeField, ForeignKeyField, Model


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Resident(Base):
        class Meta:
            table_name = "resident"

    class CheckInFailure(Base):
        resident = ForeignKeyField(Resident)
        created_at = DateTimeField(default=datetime.datetime.utcnow, index=True)

    db.create_tables([CheckInFailure])
