"""The database handle: declared here, bound to a URL by the entry points."""

from peewee import DatabaseProxy, PostgresqlDatabase, SqliteDatabase
from playhouse.db_url import connect
from playhouse.migrations import Runner

#: Every model in Linli binds to this proxy; `open_database` gives it a real database.
db = DatabaseProxy()

SQLITE_PRAGMAS = (
    ("journal_mode", "wal"),
    ("foreign_keys", 1),
    ("synchronous", "full"),
    ("busy_timeout", 30_000),
    # Makes INSERT OR REPLACE fire the no-delete triggers, so it cannot overwrite ledger rows.
    ("recursive_triggers", 1),
)


def open_database(url, base_dir=None):
    """Connect the shared handle to the database at `url` (sqlite:///... or postgresql://...).

    A relative SQLite path (sqlite:///instance/linli.db) is taken from `base_dir` when given,
    so every process finds the same file wherever it was started.
    """
    prefix = "sqlite:///"
    path = url[len(prefix):] if url.startswith(prefix) else None
    if base_dir and path and not path.startswith("/") and path != ":memory:":
        url = f"{prefix}{base_dir}/{path}"
    if url.startswith("sqlite:"):
        # IMMEDIATE: a write transaction takes the write lock at BEGIN, so two writers queue
        # instead of one failing with "database is locked" half-way through.
        database = connect(url, pragmas=SQLITE_PRAGMAS, lock_type="IMMEDIATE", timeout=30)
    else:
        database = connect(url)
    db.initialize(database)
    return database


def is_sqlite():
    """Tell whether the shared handle is bound to SQLite."""
    return isinstance(db.obj, SqliteDatabase)


def is_postgresql():
    """Tell whether the shared handle is bound to PostgreSQL."""
    return isinstance(db.obj, PostgresqlDatabase)


def migrate(directory):
    """Apply the pending migrations in `directory`; return their names. Safe to run twice."""
    return Runner(db.obj, directory=directory).up()
