"""Resident channels: conversation state per sender, inbound message ids seen, and what the
providers said of each notice sent."""

import datetime

from peewee import BooleanField, CharField, DateTimeField, Model, TextField

now = datetime.datetime.utcnow


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Conversation(Base):
        channel = CharField(max_length=12)
        address = CharField(max_length=40)
        state = CharField(max_length=30, default="")
        data = TextField(default="{}")
        language = CharField(max_length=8, default="zh_Hans")
        opted_out = BooleanField(default=False)
        updated_at = DateTimeField(default=now)

        class Meta:
            indexes = ((("channel", "address"), True),)

    class Inbound(Base):
        key = CharField(max_length=80, unique=True)
        address = CharField(max_length=40, default="", index=True)
        reply = TextField(default="")
        created_at = DateTimeField(default=now)

    db.create_tables([Conversation, Inbound])
    migrator.migrate(
        migrator.add_column("notice", "provider_id", CharField(max_length=64, default="", index=True)),
        migrator.add_column("notice", "delivery_status", CharField(max_length=40, default="")),
    )
