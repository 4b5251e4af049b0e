"""An activity's optional English title; the community office's phone number, which the SMS
menu gives for help from a person; and, for each inbound SMS, its folded text and the segments its
reply took, so that a loop of one message is told from a person talking and a day's budget kept."""

from peewee import CharField, IntegerField


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("community", "phone", CharField(max_length=32, default="")),
        migrator.add_column("activity", "title_en", CharField(max_length=100, default="")),
        migrator.add_column("inbound", "fold", CharField(max_length=64, default="")),
        migrator.add_column("inbound", "segments", IntegerField(default=0)),
    )
