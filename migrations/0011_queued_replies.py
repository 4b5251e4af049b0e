"""Replies queued in the outbox: the SMS providers that take no inline reply (the Android gateway)
get the dialogue's answer as a notice to the number it answers, which may be no resident yet."""

from peewee import CharField


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("notice", "address", CharField(max_length=40, default="")),
        migrator.drop_not_null("notice", "resident_id"),
    )
