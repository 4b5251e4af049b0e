"""Places of the grid can be archived (never deleted): a grid that was merged, a unit demolished."""

from peewee import BooleanField


def up(migrator, db):
    migrator.migrate(migrator.add_column("community", "archived", BooleanField(default=False)))
