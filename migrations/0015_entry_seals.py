"""Entry seals: each new entry carries an HMAC of its hash under the ledger key (which never lives
in the database), and signed checkpoints stored here vouch for the entries written before it."""

import datetime

from peewee import CharField, DateTimeField, Model, PostgresqlDatabase, TextField


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Checkpoint(Base):
        made_at = DateTimeField(default=datetime.datetime.utcnow)
        body = TextField()

    db.create_tables([Checkpoint])
    migrator.migrate(migrator.add_column("entry", "seal", CharField(max_length=64, null=True)))
    if isinstance(db, PostgresqlDatabase):
        db.execute_sql("CREATE TRIGGER checkpoint_append_only BEFORE UPDATE OR DELETE ON checkpoint "
                       "FOR EACH ROW EXECUTE FUNCTION linli_append_only()")
        db.execute_sql("CREATE TRIGGER checkpoint_no_truncate BEFORE TRUNCATE ON checkpoint "
                       "FOR EACH STATEMENT EXECUTE FUNCTION linli_append_only()")
    else:
        for action in ("UPDATE", "DELETE"):
            db.execute_sql(f"CREATE TRIGGER checkpoint_no_{action.lower()} BEFORE {action} ON checkpoint "
                           "BEGIN SELECT RAISE(ABORT, 'ledger checkpoint rows are append-only'); END")
