"""The SMS simulator's transcript, kept on the server per staff member (not in the cookie)."""

import datetime

from peewee import CharField, DateTimeField, ForeignKeyField, IntegerField, Model, TextField


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Staff(Base):
        class Meta:
            table_name = "staff"

    class SimulatorLine(Base):
        staff = ForeignKeyField(Staff, index=True)
        phone = CharField(max_length=40)  # masked
        sent = TextField()
        reply = TextField(default="")
        segments = IntegerField(default=0)
        created_at = DateTimeField(default=datetime.datetime.utcnow)

    db.create_tables([SimulatorLine])
