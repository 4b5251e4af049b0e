"""Communities, residents, staff, point rules, activities, sign-ups, notices, audit log."""

import datetime

from peewee import (
    BigIntegerField,
    BooleanField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

now = datetime.datetime.utcnow


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Account(Base):
        class Meta:
            table_name = "account"

    class Transfer(Base):
        class Meta:
            table_name = "transfer"

    class Community(Base):
        code = CharField(max_length=20, unique=True)
        name_zh = CharField(max_length=100)
        name_en = CharField(max_length=100)
        level = CharField(max_length=20)
        parent = ForeignKeyField("self", null=True)
        issuer = ForeignKeyField(Account, null=True, unique=True)
        created_at = DateTimeField(default=now)

    class Resident(Base):
        community = ForeignKeyField(Community)
        display_name = CharField(max_length=60)
        phone = CharField(max_length=20, null=True, unique=True)
        telegram_id = BigIntegerField(null=True, unique=True)
        language = CharField(max_length=8, default="zh_Hans")
        sms_opt_out = BooleanField(default=False)
        status = CharField(max_length=12, default="active")
        grid_label = CharField(max_length=40, default="")
        unit_label = CharField(max_length=40, default="")
        account = ForeignKeyField(Account, unique=True)
        created_at = DateTimeField(default=now)

    class Staff(Base):
        username = CharField(max_length=40, unique=True)
        password_hash = CharField(max_length=200)
        display_name = CharField(max_length=60, default="")
        role = CharField(max_length=12)
        community = ForeignKeyField(Community, null=True)
        resident = ForeignKeyField(Resident, null=True, unique=True)
        active = BooleanField(default=True)
        created_at = DateTimeField(default=now)

    class PointRule(Base):
        category = CharField(max_length=30)
        version = IntegerField()
        points = IntegerField()
        confirmations_required = IntegerField(default=1)
        name_zh = CharField(max_length=40)
        name_en = CharField(max_length=40)
        created_by = ForeignKeyField(Staff, null=True)
        created_at = DateTimeField(default=now)

        class Meta:
            indexes = ((("category", "version"), True),)

    class Activity(Base):
        community = ForeignKeyField(Community)
        code = CharField(max_length=8)
        title = CharField(max_length=100)
        description = TextField(default="")
        category = CharField(max_length=30)
        starts_at = DateTimeField()
        ends_at = DateTimeField()
        place = CharField(max_length=100, default="")
        capacity = IntegerField()
        taken = IntegerField(default=0)
        status = CharField(max_length=12, default="open")
        checkin_code = CharField(max_length=8)
        created_by = ForeignKeyField(Staff, null=True)
        created_at = DateTimeField(default=now)

    class Signup(Base):
        activity = ForeignKeyField(Activity, null=True)
        resident = ForeignKeyField(Resident)
        category = CharField(max_length=30, default="")
        note = TextField(default="")
        state = CharField(max_length=12)
        reason = TextField(default="")
        transfer = ForeignKeyField(Transfer, null=True)
        rule = ForeignKeyField(PointRule, null=True)
        created_by = ForeignKeyField(Staff, null=True)
        created_at = DateTimeField(default=now)
        updated_at = DateTimeField(default=now)

        class Meta:
            indexes = ((("activity", "resident"), True),)

    class Confirmation(Base):
        signup = ForeignKeyField(Signup)
        staff = ForeignKeyField(Staff)
        created_at = DateTimeField(default=now)

        class Meta:
            indexes = ((("signup", "staff"), True),)

    class Notice(Base):
        kind = CharField(max_length=30)
        resident = ForeignKeyField(Resident)
        params = TextField(default="{}")
        dedupe_key = CharField(max_length=100, null=True, unique=True)
        status = CharField(max_length=12, default="pending")
        attempts = IntegerField(default=0)
        channel = CharField(max_length=12, default="")
        last_error = TextField(default="")
        created_at = DateTimeField(default=now)
        next_attempt_at = DateTimeField(default=now)
        sent_at = DateTimeField(null=True)

    class AuditEvent(Base):
        staff = ForeignKeyField(Staff, null=True)
        action = CharField(max_length=40)
        target = CharField(max_length=100, default="")
        detail = TextField(default="{}")
        community = ForeignKeyField(Community, null=True)
        created_at = DateTimeField(default=now)

    db.create_tables(
        [Community, Resident, Staff, PointRule, Activity, Signup, Confirmation, Notice, AuditEvent]
    )
    # SMS and check-in codes are unique among open activities only, so they can be reused.
    db.execute_sql("CREATE UNIQUE INDEX activity_open_code ON activity (code) WHERE status = 'open'")
    db.execute_sql(
        "CREATE UNIQUE INDEX activity_open_checkin ON activity (checkin_code) WHERE status = 'open'"
    )
    db.execute_sql("CREATE INDEX notice_pending ON notice (status, next_attempt_at)")
