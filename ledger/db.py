"""The database handle: declared here, bound to a URL by the entry points."""

import fcntl
import functools
import os
import select
import threading
from collections.abc import Callable
from typing import NamedTuple

from peewee import DatabaseProxy, Insert, PostgresqlDatabase, SelectBase, SqliteDatabase, __exception_wrapper__
from playhouse.db_url import connect, parse
from playhouse.migrations import Runner
from playhouse.pool import PooledSqliteDatabase, _PooledPostgresqlDatabase
from psycopg.pq import TransactionStatus

from .keys import use_key

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


class _LightRecords:
    """SQLite's side of `record`. A record in a transaction that has written nothing waits; at
    COMMIT it goes in a transaction of its own, committed with `synchronous=NORMAL` (SQLite will
    not change that inside a transaction). A statement after it in the same transaction writes it
    there and then, as durably as the rest."""

    def begin(self, lock_type=None):
        super().begin(lock_type)
        self._state.changes, self._state.record = self._state.conn.total_changes, None

    def record(self, sql, params):
        state = self._state
        if self.transaction_depth() == 1 and state.conn.total_changes == getattr(state, "changes", None):
            state.record = (sql, params)
        else:
            self.execute_sql(sql, params)

    def _take_record(self):
        record, self._state.record = getattr(self._state, "record", None), None
        return record

    def execute_sql(self, sql, params=None):
        if getattr(self._state, "record", None):
            super().execute_sql(*self._take_record())
        return super().execute_sql(sql, params)

    def commit(self):
        record = self._take_record()
        super().commit()
        if not record:
            return
        self.execute_sql("PRAGMA synchronous = NORMAL")
        try:
            SqliteDatabase.begin(self)
            self.execute_sql(*record)
            SqliteDatabase.commit(self)
        except BaseException:
            if self._state.conn.in_transaction:
                SqliteDatabase.rollback(self)
            raise
        finally:  # SQLite will not change it while a transaction is open: rolled back first
            self.execute_sql(f"PRAGMA synchronous = {dict(self._pragmas).get('synchronous', 'full')}")

    def rollback(self):
        self._take_record()
        if self._state.conn is not None and not self._state.conn.in_transaction:
            return None  # a record's own transaction failed at COMMIT and was rolled back there
        return super().rollback()


class _Sqlite(_LightRecords, SqliteDatabase):
    """SQLite for a one-off command or a test."""


class _QueuedPooledSqlite(_LightRecords, PooledSqliteDatabase):
    """SQLite for a serving process (a web worker, the bot, the worker), its writers in a queue:
    a transaction waits its turn on an flock of a file beside the database (`linli.db-queue`)
    before BEGIN IMMEDIATE and gives it up at COMMIT or ROLLBACK, so the kernel wakes the next
    writer the moment one ends. SQLite's own wait polls with sleeps that grow to 100 ms: two web
    workers waited longer for the lock than it was held. A one-off command writing back to back
    (an import) keeps SQLite's own wait, which lets it keep the lock between its transactions,
    and so does any other program that opens the file."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._queue_path = None if self.database == ":memory:" else f"{self.database}-queue"
        self._queue = threading.local()  # each thread its own file, for its own place in the queue

    def _turn(self):
        queue = self._queue
        if getattr(queue, "pid", None) != os.getpid():  # a forked child must not share the parent's file
            queue.fd, queue.pid = os.open(self._queue_path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o660), os.getpid()
        return queue.fd

    def begin(self, lock_type=None):
        if self._queue_path is None:
            return super().begin(lock_type)
        turn = self._turn()
        fcntl.flock(turn, fcntl.LOCK_EX)
        try:
            return super().begin(lock_type)
        except BaseException:
            fcntl.flock(turn, fcntl.LOCK_UN)
            raise

    def _done(self):
        if self._queue_path is not None and getattr(self._queue, "pid", None) == os.getpid():
            fcntl.flock(self._queue.fd, fcntl.LOCK_UN)

    def commit(self):
        try:
            return super().commit()
        finally:
            self._done()

    def rollback(self):
        try:
            return super().rollback()
        finally:
            self._done()


class _Postgres(PostgresqlDatabase):
    """PostgreSQL with fewer round trips (on a busy server one costs more than most statements a
    message makes). What nobody waits for the answer to — a transaction's BEGIN, its savepoints,
    a last write handed to `later` — waits and goes out with the next statement, or with COMMIT,
    in one psycopg pipeline; `together` sends several reads at once. A transaction that runs no
    statement sends nothing. A waiting statement's error is raised where it goes out."""

    BEGIN = ("BEGIN", None)
    #: What peewee runs for a savepoint (and never reads the answer of): how each changes the
    #: number of savepoint blocks open.
    SAVEPOINTS = {"SAVEPOINT ": 1, "RELEASE SAVEPOINT ": -1, "ROLLBACK TO SAVEPOINT ": -1}

    def _local(self):
        """This thread's statements waiting to go out, and its savepoint blocks open."""
        state = self._state  # one per thread
        if not hasattr(state, "waiting"):
            state.waiting, state.savepoints = [], 0
        return state

    def _take_waiting(self):
        state = self._local()
        waiting, state.waiting = state.waiting, []
        return waiting

    def begin(self):
        self.connection()  # connects now, as peewee's BEGIN would: connecting forgets transactions
        self._local().waiting, self._state.savepoints, self._state.record = [self.BEGIN], 0, None

    def later(self, sql, params, *, in_savepoint=False):
        """Send `sql` with the next statement or COMMIT when in a transaction and, unless
        `in_savepoint`, in no savepoint block (whose end is no COMMIT); else now."""
        self._log_query(sql, params)
        state = self._local()
        if self.in_transaction() and (in_savepoint or not state.savepoints):
            state.waiting.append((sql, params))
        else:
            self.send([(sql, params)])

    #: Sent just before a `record` that is the last of its transaction: the commit need not
    #: wait for the disk if the transaction has written nothing else (PostgreSQL gives it an id
    #: at its first write); else it waits as configured.
    LIGHTLY = ("SELECT set_config('synchronous_commit', CASE WHEN pg_current_xact_id_if_assigned() IS NULL "
               "THEN 'off' ELSE current_setting('synchronous_commit') END, true)", None)

    def record(self, sql, params):
        self.later(sql, params)
        state = self._local()
        state.record = state.waiting[-1] if self.in_transaction() and not state.savepoints else None

    def execute_sql(self, sql, params=None):
        step = next((n for word, n in self.SAVEPOINTS.items() if sql.startswith(word)), None)
        if step is not None and self.in_transaction():
            self.later(sql, params, in_savepoint=True)
            self._state.savepoints += step
            return None
        if not self._local().waiting:
            return super().execute_sql(sql, params)
        self._log_query(sql, params)
        return self.send([(sql, params)])[-1]

    def send(self, statements):
        """Run what is waiting and then `statements`, in one round trip; return their cursors."""
        everything = self._take_waiting() + statements
        with __exception_wrapper__:
            connection = self.connection()
            cursors = [connection.cursor() for _ in everything]
            if len(everything) == 1:  # a pipeline costs more work than it saves for one statement
                cursors[0].execute(*everything[0])
            else:
                with connection.pipeline():  # leaving it waits for every answer
                    for cursor, (sql, params) in zip(cursors, everything, strict=True):
                        cursor.execute(sql, params or ())
        return cursors[len(everything) - len(statements):]

    def commit(self):
        if self._local().waiting == [self.BEGIN]:
            self._state.waiting = []  # nothing of the transaction reached the server
        else:
            waiting = self._state.waiting
            if waiting and waiting[-1] is getattr(self._state, "record", None):  # the record is still last
                self._log_query(*self.LIGHTLY)
                waiting.insert(-1, self.LIGHTLY)
            self.send([("COMMIT", None)])

    def rollback(self):
        if self._take_waiting()[:1] != [self.BEGIN]:  # else nothing of it reached the server
            super().rollback()


class _PooledPostgres(_PooledPostgresqlDatabase, _Postgres):
    """Pooled PostgreSQL that checks a connection it hands out without a round trip when it can:
    an idle connection the server has sent nothing to since it came back is as alive as a ping
    would find it. One with something to read (a notice, or the goodbye of a server that shut
    down or ended the session) is pinged as peewee always does, and dropped if that fails."""

    def _is_closed(self, conn):
        if not conn.closed and conn.pgconn.transaction_status == TransactionStatus.IDLE:
            waiting = select.poll()
            waiting.register(conn.fileno(), select.POLLIN)
            if not waiting.poll(0):
                return False
        return super()._is_closed(conn)


#: Connections one pooled process keeps at most (a gunicorn worker, the bot, a worker).
POOL_SIZE = 16


def open_database(url, base_dir=None, pool=False, key=None):
    """Connect the shared handle to the database at `url` (sqlite:///... or postgresql://...),
    sealing new entries with the ledger `key` (see keys.py).

    A relative SQLite path (sqlite:///instance/linli.db) is taken from `base_dir` when given,
    so every process finds the same file wherever it was started. With `pool`, closing hands
    the connection back for the next request instead of ending it (long-running processes).
    """
    prefix = "sqlite:///"
    path = url[len(prefix):] if url.startswith(prefix) else None
    if base_dir and path and not path.startswith("/") and path != ":memory:":
        url = f"{prefix}{base_dir}/{path}"
    scheme, rest = url.split(":", 1)
    # `timeout`: how long to wait for a free pooled connection, or SQLite's lock wait (the
    # busy_timeout pragma sets that as well).
    options = {"timeout": 30}
    if pool:
        url = f"{scheme}+pool:{rest}"
        options |= {"max_connections": POOL_SIZE, "stale_timeout": 300}
    if scheme == "sqlite":
        # IMMEDIATE: a write transaction takes the write lock at BEGIN, so two writers queue
        # instead of one failing with "database is locked" half-way through.
        options |= {"pragmas": SQLITE_PRAGMAS, "lock_type": "IMMEDIATE"}
        if pool:
            options["check_same_thread"] = False  # a pooled connection serves one thread at a time
    elif not pool:
        options = {}
    if scheme in ("postgres", "postgresql"):
        database = (_PooledPostgres if pool else _Postgres)(**parse(url), **options)
    elif scheme == "sqlite" and pool:
        database = _QueuedPooledSqlite(**parse(url), **options)
    elif scheme == "sqlite":
        database = _Sqlite(**parse(url), **options)
    else:
        database = connect(url, **options)
    db.initialize(database)
    use_key(key)
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


class _Slot:
    """Where a value goes in a prepared query: recognisable in the compiled parameters as it is,
    or after a text or integer field has converted it."""

    BASE = -(2**62)

    def __init__(self, n):
        self.n = n

    def __int__(self):
        return self.BASE + self.n

    __index__ = __int__

    def __str__(self):
        return f"\x00slot{self.n}\x00"


def prepared(build):
    """A peewee query compiled once per kind of database instead of on every call.

    `build(*slots)` makes the query from one placeholder per value (compared with or written to
    text, integer, key or date fields, never boolean ones); calling the result with the values
    runs it. A SELECT returns its rows as the query itself would (models, tuples…), an INSERT the
    new row's id (None when an insert that ignores conflicts met one), an UPDATE the number of
    rows it changed. An insert names every field that has a computed default (a time): compiled
    once, such a default would be the same for every row. For the statements every message makes.
    """
    arity = build.__code__.co_argcount
    compiled = {}

    def compile_():
        slots = [_Slot(n) for n in range(arity)]
        query = build(*slots)
        if isinstance(query, Insert):
            _no_frozen_defaults(query)
            if is_postgresql():
                query = query.returning(query.model._meta.primary_key)
        sql, params = query.sql()
        marks = {**{int(s): s.n for s in slots}, **{str(s): s.n for s in slots}}
        where = [p.n if isinstance(p, _Slot) else marks.get(p)
                 if isinstance(p, (int, str)) and not isinstance(p, bool) else None for p in params]
        if {n for n in where if n is not None} != set(range(arity)):
            raise ValueError(f"every value must appear in the query: {sql}")
        entry = compiled[type(db.obj)] = [query, sql, params, where, None]
        return entry

    def finish(entry, cursor):
        query, resolved = entry[0], entry[4]
        if isinstance(query, SelectBase):
            rows = query._get_cursor_wrapper(cursor)
            if resolved is not None:  # what peewee works out from the columns before the first row
                vars(rows).update(resolved, initialized=True)
                return list(rows)
            known = set(vars(rows))
            found = list(rows)
            if rows.initialized:  # the same statement has the same columns: keep what it worked out
                entry[4] = {k: v for k, v in vars(rows).items() if k not in known}
            return found
        if isinstance(query, Insert):
            if is_postgresql():
                row = cursor.fetchone()
                return row[0] if row else None
            return cursor.lastrowid if cursor.rowcount else None
        return cursor.rowcount

    def bind(*values):
        entry = compiled.get(type(db.obj)) or compile_()
        _, sql, params, where, _ = entry
        return Bound(sql, [p if n is None else values[n] for p, n in zip(params, where, strict=True)],
                     functools.partial(finish, entry))

    def run(*values):
        return bind(*values).run()

    run.bind = bind
    return run


class Bound(NamedTuple):
    """A prepared query with its values (`query.bind(...)`): run it alone, or with others
    (`together`). `finish` makes the result from the cursor; without `sql` it is a value
    known without asking (`Bound.known`)."""

    sql: str | None
    params: list | None
    finish: Callable

    @classmethod
    def known(cls, value):
        return cls(None, None, lambda _cursor: value)

    def run(self):
        return self.finish(None if self.sql is None else db.execute_sql(self.sql, self.params))

    def then(self, change):
        """The same query, its result passed through `change`."""
        return Bound(self.sql, self.params, lambda cursor: change(self.finish(cursor)))


def together(*calls):
    """Run several prepared queries (`query.bind(...)`) and return their results in order: on
    PostgreSQL in one round trip, with whatever of the transaction is waiting to go out."""
    asked = [(call.sql, call.params) for call in calls if call.sql is not None]
    if isinstance(db.obj, _Postgres) and asked:
        for sql, params in asked:
            db.obj._log_query(sql, params)
        cursors = iter(db.obj.send(asked))
    else:
        cursors = iter([db.execute_sql(sql, params) for sql, params in asked])
    return [call.finish(None if call.sql is None else next(cursors)) for call in calls]


def later(call):
    """Run a prepared write whose answer nobody reads (`query.bind(...)`). On PostgreSQL, in a
    transaction with no savepoint open, it goes out with the next statement or with COMMIT, and
    its error (a duplicate key) is raised there, at the end of the `atomic()` block at the
    latest; in a savepoint (an `atomic()` within another, whose end is no COMMIT) it runs at once.
    A write that is meant to fail now and then (a redelivered message's key) goes last, so that
    its error cannot surface inside a later block that handles errors of its own."""
    if isinstance(db.obj, _Postgres):
        db.obj.later(call.sql, call.params)
    else:
        db.execute_sql(call.sql, call.params)


def record(call):
    """Write, as `later` does and as the last write of its transaction, the record that a message
    was answered (`query.bind(...)`: an SMS's MessageSid, a Telegram update's id). When it is all
    the transaction writes (a balance asked for, a list read), the commit does not wait for the
    disk: a power cut in the next moment may lose the record, which only means a redelivery of
    that message is answered again, as it was the first time. A transaction that wrote anything
    else commits durably, the record with it."""
    if isinstance(db.obj, (_Postgres, _LightRecords)):
        db.obj.record(call.sql, call.params)
    else:
        db.execute_sql(call.sql, call.params)


def _no_frozen_defaults(insert):
    model = insert.model
    given = {getattr(f, "name", f) for f in (insert._insert or {})}
    frozen = [f.name for f in model._meta.sorted_fields if callable(f.default) and f.name not in given]
    if frozen:
        raise ValueError(f"a prepared insert into {model.__name__} must name {', '.join(frozen)}")
