"""Contacts: how each resident wants to hear from us on each channel. Carries over who said STOP
by SMS (on their record or from their number before they were registered) and who has written to
us from their number or linked Telegram (verified), then drops `resident.sms_opt_out`."""

import datetime

from peewee import BooleanField, CharField, DateTimeField, ForeignKeyField, Model


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Resident(Base):
        class Meta:
            table_name = "resident"

    class Contact(Base):
        resident = ForeignKeyField(Resident)
        channel = CharField(max_length=12)
        opted_out = BooleanField(default=False)
        no_announcements = BooleanField(default=False)
        verified = BooleanField(default=False)
        updated_at = DateTimeField(default=datetime.datetime.utcnow)

        class Meta:
            indexes = ((("resident", "channel"), True),)

    db.create_tables([Contact])
    said = "FROM conversation c WHERE c.channel = 'sms' AND c.address = r.phone"
    db.execute_sql(
        "INSERT INTO contact (resident_id, channel, opted_out, no_announcements, verified, updated_at) "
        f"SELECT r.id, 'sms', (r.sms_opt_out OR EXISTS (SELECT 1 {said} AND c.opted_out)), FALSE, "
        f"EXISTS (SELECT 1 {said}), CURRENT_TIMESTAMP FROM resident r WHERE r.phone IS NOT NULL")
    db.execute_sql(
        "INSERT INTO contact (resident_id, channel, opted_out, no_announcements, verified, updated_at) "
        "SELECT r.id, 'telegram', FALSE, FALSE, TRUE, CURRENT_TIMESTAMP FROM resident r "
        "WHERE r.telegram_id IS NOT NULL")
    migrator.migrate(migrator.drop_column("resident", "sms_opt_out"))
