"""The ledger: accounts, transfers, entries, and triggers that keep the last two append-only."""

import datetime

from peewee import (
    BigIntegerField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
    PostgresqlDatabase,
    TextField,
)

APPEND_ONLY_TABLES = ("transfer", "entry")


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Account(Base):
        code = CharField(max_length=100, unique=True)
        kind = CharField(max_length=20)
        name = CharField(max_length=200, default="")
        balance = BigIntegerField(default=0)
        version = IntegerField(default=0)
        head_hash = CharField(max_length=64)
        created_at = DateTimeField(default=datetime.datetime.utcnow)

    class Transfer(Base):
        idempotency_key = CharField(max_length=200, unique=True)
        kind = CharField(max_length=20)
        memo = TextField(default="")
        actor = CharField(max_length=100)
        created_at = DateTimeField()
        reverses = ForeignKeyField("self", null=True, unique=True)
        fingerprint = CharField(max_length=64)
        digest = CharField(max_length=64)

    class Entry(Base):
        transfer = ForeignKeyField(Transfer)
        account = ForeignKeyField(Account)
        seq = IntegerField()
        amount = BigIntegerField()
        balance_after = BigIntegerField()
        prev_hash = CharField(max_length=64)
        hash = CharField(max_length=64)

        class Meta:
            indexes = ((("account", "seq"), True),)

    db.create_tables([Account, Transfer, Entry])
    if isinstance(db, PostgresqlDatabase):
        # "%%" because the driver treats a lone % as a parameter placeholder.
        db.execute_sql(
            """
            CREATE FUNCTION linli_append_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION 'ledger %% rows are append-only', TG_TABLE_NAME;
            END;
            $$ LANGUAGE plpgsql
            """
        )
        for table in APPEND_ONLY_TABLES:
            db.execute_sql(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION linli_append_only()"
            )
            db.execute_sql(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION linli_append_only()"
            )
    else:
        for table in APPEND_ONLY_TABLES:
            for action in ("UPDATE", "DELETE"):
                db.execute_sql(
                    f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'ledger {table} rows are append-only'); END"
                )
