"""Fixtures: a freshly migrated database per test, on SQLite or on the PostgreSQL server in
TEST_DATABASE_URL; the Flask app, its client and its CLI runner on top of it."""

import itertools
import os
import queue
import shutil
import threading
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import community_factory
import psycopg
import pytest
from argon2 import PasswordHasher
from commits import statements  # noqa: F401  (a fixture for every test file)
from logcheck import every_logger_at_debug  # noqa: F401  (a fixture for every test file)

import ledger
from catalog import cards
from community import people, staffing
from web import create_app

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = str(ROOT / "migrations")
PG_URL = os.environ.get("TEST_DATABASE_URL")
_counter = itertools.count()
#: Argon2 at its lowest cost: about 1 ms a hash instead of a quarter of a second, for every staff
#: member the tests create or log in and every card PIN they set or check.
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
#: Every module-level hasher the product uses (staffing imports people's by name).
HASHERS = ((people, "_hasher"), (staffing, "_hasher"), (cards, "_hasher"))


def pg_url_for(dbname):
    """The server's URL with another database name."""
    parts = urlsplit(PG_URL)
    return urlunsplit(parts._replace(path="/" + dbname))


def pg_admin(sql):
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(sql)


def copy_strategy():
    """How CREATE DATABASE copies. PostgreSQL 15's default, WAL_LOG, writes the whole copy to the
    WAL: half a second of the server's CPU for our template. FILE_COPY copies the files and
    checkpoints, a tenth of that on a test server (fsync off)."""
    with psycopg.connect(PG_URL) as conn:
        return " STRATEGY FILE_COPY" if conn.info.server_version >= 150000 else ""


class SpareDatabases:
    """Copies of the template made before the tests that take them, and dropped after them, by a
    thread of its own, on one connection: the server does this while a test runs rather than
    before each one starts. Every test still gets a database nobody used before, fresh from the
    template."""

    SPARES = 2

    def __init__(self, template):
        self.template = template
        self.strategy = copy_strategy()
        self.ready, self.used = queue.Queue(), queue.Queue()
        self.stopping = threading.Event()
        self.failure = None
        self.thread = threading.Thread(target=self._work, name="spare-databases", daemon=True)
        self.thread.start()

    def _work(self):
        try:
            # One connection for the thread's life: psycopg logs connection attempts, and the
            # tests read the log of whatever test is running.
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                while not self.stopping.is_set():
                    try:
                        name = self.used.get(timeout=0.02)
                    except queue.Empty:
                        name = None
                    if name is not None:
                        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
                    elif self.ready.qsize() < self.SPARES:
                        name = f"linli_t_{os.getpid()}_{next(_counter)}_{uuid.uuid4().hex[:6]}"
                        conn.execute(f"CREATE DATABASE {name} TEMPLATE {self.template}{self.strategy}")
                        self.ready.put(name)
        except BaseException as exc:  # handed to the next test that asks for a database
            self.failure = exc
            self.ready.put(None)

    def take(self):
        name = self.ready.get(timeout=300)
        if name is None:
            self.ready.put(None)
            raise RuntimeError("no copy of the template database") from self.failure
        return name

    def give_back(self, name):
        self.used.put(name)

    def close(self):
        self.stopping.set()
        self.thread.join(60)
        for waiting in (self.ready, self.used):
            while not waiting.empty():
                if (name := waiting.get()) is not None:
                    pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(autouse=True)
def cheap_hashes(request, monkeypatch):
    """Cheap Argon2 parameters everywhere but in tests marked `full_cost_hashing`, which check
    the production ones. Hashes keep their parameters, so any hasher verifies them."""
    if request.node.get_closest_marker("full_cost_hashing"):
        return
    for module, name in HASHERS:
        monkeypatch.setattr(module, name, CHEAP_HASHER)


@pytest.fixture(scope="session")
def template_db(tmp_path_factory):
    """Migrate once; each test starts from a copy (PostgreSQL: SpareDatabases hands them out)."""
    if PG_URL:
        name = f"linli_tpl_{os.getpid()}"
        pg_admin(f"DROP DATABASE IF EXISTS {name}")
        pg_admin(f"CREATE DATABASE {name}")
        database = ledger.open_database(pg_url_for(name))
        ledger.migrate(MIGRATIONS)
        database.close()
        spares = SpareDatabases(name)
        yield spares
        spares.close()
        pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    else:
        path = tmp_path_factory.mktemp("template") / "linli.db"
        database = ledger.open_database(f"sqlite:///{path}")
        ledger.migrate(MIGRATIONS)
        database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        database.close()
        yield path


@pytest.fixture
def db_url(template_db, tmp_path):
    """A URL to a fresh, migrated, empty database of the kind under test."""
    if PG_URL:
        name = template_db.take()
        yield pg_url_for(name)
        if ledger.db.obj is not None and not ledger.db.is_closed():
            ledger.db.close()
        template_db.give_back(name)
    else:
        path = tmp_path / "linli.db"
        shutil.copy(template_db, path)
        yield f"sqlite:///{path}"
        if ledger.db.obj is not None and not ledger.db.is_closed():
            ledger.db.close()


@pytest.fixture
def empty_db_url(tmp_path):
    """A URL to an empty database with no tables at all."""
    if PG_URL:
        name = f"linli_e_{os.getpid()}_{next(_counter)}_{uuid.uuid4().hex[:6]}"
        pg_admin(f"CREATE DATABASE {name}")
        yield pg_url_for(name)
        if ledger.db.obj is not None and not ledger.db.is_closed():
            ledger.db.close()
        pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    else:
        yield f"sqlite:///{tmp_path / 'empty.db'}"


@pytest.fixture
def db(db_url):
    """The shared handle, connected to a fresh database for this test."""
    database = ledger.open_database(db_url)
    database.connect()
    yield database
    if not database.is_closed():
        database.close()


@pytest.fixture
def app(db_url, tmp_path):
    app = create_app({"TESTING": True, "DATABASE_URL": db_url, "SECRET_KEY": "test",
                      "DEMO_CREDENTIALS": str(tmp_path / "demo-credentials.txt")})
    yield app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def place(db):
    """A district tree with communities, built through the services (community_factory)."""
    return community_factory.build_place()


@pytest.fixture
def boss(place):
    """A coordinator of the north community."""
    return community_factory.coordinator(place.north)
