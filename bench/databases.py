"""Fresh, migrated databases for each measurement: SQLite files in the work folder, PostgreSQL
databases on the server in BENCH_DATABASE_URL or on a throw-away one from scripts/pg-test-server."""

import contextlib
import itertools
import os
import shutil
import sqlite3
import subprocess
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

import ledger

from .common import ROOT

MIGRATIONS = str(ROOT / "migrations")
SQLITE, POSTGRESQL = "sqlite", "postgresql"
KINDS = (SQLITE, POSTGRESQL)


def pg_url_for(url, dbname):
    """The server's URL with another database name."""
    return urlunsplit(urlsplit(url)._replace(path="/" + dbname))


def sqlite_path(url):
    """The file of a sqlite:////absolute/path URL."""
    return url[len("sqlite:///"):]


class Databases:
    """Hands out fresh migrated databases and removes them (and any server it started) at close."""

    def __init__(self, workdir, kinds=KINDS, pg_url=None):
        self.workdir = Path(workdir)
        self.kinds = tuple(kinds)
        self.pg_url = pg_url or os.environ.get("BENCH_DATABASE_URL") or None
        self.pg_dir = None
        self._templates = {}
        self._created = []
        self._serial = itertools.count(1)
        self._tag = uuid.uuid4().hex[:6]

    # --- the PostgreSQL server ------------------------------------------------------------------

    def start(self):
        """Start a throw-away PostgreSQL server unless one was given (or PostgreSQL is not wanted)."""
        if POSTGRESQL in self.kinds and not self.pg_url:
            self.pg_dir = os.environ.get("LINLI_PG_DIR") or os.path.join(tempfile.gettempdir(), "linli-pg-bench")
            env = {**os.environ, "LINLI_PG_DIR": self.pg_dir, "LINLI_PG_PORT": os.environ.get("LINLI_PG_PORT", "54343"),
                   "LINLI_PG_DURABLE": "1"}
            self._pg_env = env
            print(f"starting a throw-away PostgreSQL server in {self.pg_dir}", flush=True)
            result = subprocess.run([str(ROOT / "scripts" / "pg-test-server"), "start"], env=env,
                                    capture_output=True, text=True, timeout=600)
            if result.returncode != 0:
                raise RuntimeError("scripts/pg-test-server could not start PostgreSQL:\n" + result.stderr)
            self.pg_url = result.stdout.strip().splitlines()[-1]
        return self

    def _admin(self, sql):
        with psycopg.connect(self.pg_url, autocommit=True) as conn:
            conn.execute(sql)

    # --- databases ------------------------------------------------------------------------------

    def _template(self, kind):
        if kind in self._templates:
            return self._templates[kind]
        if kind == SQLITE:
            path = self.workdir / "template.db"
            database = ledger.open_database(f"sqlite:///{path}")
            ledger.migrate(MIGRATIONS)
            database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            database.close()
            template = path
        else:
            template = f"linli_bench_tpl_{os.getpid()}_{self._tag}"
            self._admin(f"DROP DATABASE IF EXISTS {template}")
            self._admin(f"CREATE DATABASE {template}")
            self._created.append(template)
            database = ledger.open_database(pg_url_for(self.pg_url, template))
            ledger.migrate(MIGRATIONS)
            database.close()
        self._templates[kind] = template
        return template

    def fresh(self, kind, name):
        """A URL to a new, migrated, empty database of `kind` named after `name`."""
        template = self._template(kind)
        serial = next(self._serial)
        if kind == SQLITE:
            path = self.workdir / f"{name}-{serial}.db"
            shutil.copy(template, path)
            return f"sqlite:///{path}"
        dbname = f"linli_bench_{name}_{serial}_{self._tag}".lower()
        self._admin(f"CREATE DATABASE {dbname} TEMPLATE {template}")
        self._created.append(dbname)
        return pg_url_for(self.pg_url, dbname)

    def drop(self, url):
        """Remove a database made by `fresh` (its processes must be gone)."""
        if url.startswith("sqlite:"):
            path = sqlite_path(url)
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path + suffix)
            return
        dbname = urlsplit(url).path.lstrip("/")
        self._admin(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
        if dbname in self._created:
            self._created.remove(dbname)

    def close(self):
        """Drop every database made here and stop the server this object started."""
        try:
            if self.pg_url:
                for dbname in reversed(self._created):
                    with contextlib.suppress(psycopg.Error):
                        self._admin(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
                self._created.clear()
        finally:
            if self.pg_dir:
                subprocess.run([str(ROOT / "scripts" / "pg-test-server"), "stop"], env=self._pg_env,
                               capture_output=True, timeout=120, check=False)
                shutil.rmtree(self.pg_dir, ignore_errors=True)
                self.pg_dir = None

    # --- what the results say about them ----------------------------------------------------------

    def versions(self):
        """The SQLite library and PostgreSQL server versions in use."""
        found = {"sqlite": sqlite3.sqlite_version}
        if POSTGRESQL in self.kinds and self.pg_url:
            with psycopg.connect(self.pg_url) as conn:
                found["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
                settings = conn.execute(
                    "SELECT name, setting FROM pg_settings WHERE name IN "
                    "('fsync', 'synchronous_commit', 'full_page_writes', 'shared_buffers')"
                ).fetchall()
                found["postgresql_settings"] = dict(settings)
        return found
