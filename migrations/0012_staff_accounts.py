"""Running the staff: a one-time password must be changed, open sessions can be ended at once
(a counter each session carries), and the last login is shown."""

from peewee import BooleanField, DateTimeField, IntegerField


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("staff", "must_change_password", BooleanField(default=False)),
        migrator.add_column("staff", "sessions", IntegerField(default=0)),
        migrator.add_column("staff", "last_login_at", DateTimeField(null=True)),
    )
