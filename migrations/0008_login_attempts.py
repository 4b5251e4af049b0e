"""Failed staff logins and the lockouts they cause, so that passwords cannot be guessed."""

import datetime

from peewee import CharField, DateTimeField, Model


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class LoginFailure(Base):
        username_key = CharField(max_length=64)
        address = CharField(max_length=64, default="")
        created_at = DateTimeField(default=datetime.datetime.utcnow, index=True)

        class Meta:
            indexes = ((("username_key", "created_at"), False), (("address", "created_at"), False))

    class LoginLockout(Base):
        key = CharField(max_length=80)
        created_at = DateTimeField(default=datetime.datetime.utcnow)
        until = DateTimeField()

        class Meta:
            indexes = ((("key", "until"), False),)

    db.create_tables([LoginFailure, LoginLockout])
