"""`flask --app web backup` and `restore`: SQLite's online backup API, and a check of the copy
(integrity and the ledger's hash chains) before anything is replaced. PostgreSQL has pg_dump."""

import os
import shlex
import sqlite3
import tempfile
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import click
import peewee
from flask import current_app
from flask.cli import with_appcontext
from playhouse.migrations import Runner

import ledger

SQLITE_HEADER = b"SQLite format 3\x00"
LINLI_TABLES = {"schema_migration", "account", "transfer", "entry"}


@dataclass
class DatabaseCheck:
    """What `check_database_file` found in one SQLite file."""

    size: int
    integrity: list
    report: ledger.Report | None

    @property
    def ok(self):
        return self.integrity == ["ok"] and self.report is not None and self.report.ok

    @property
    def problems(self):
        return self.report.problems if self.report is not None else self.integrity

    def summary(self):
        integrity = "ok" if self.integrity == ["ok"] else "FAILED"
        ledger_state = "not checked" if self.report is None else "ok" if self.report.ok else "FAILED"
        transfers = "?" if self.report is None else self.report.transfers
        return f"{_size(self.size)}, {transfers} transfers, integrity {integrity}, ledger {ledger_state}"


def _size(count):
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024


def _append_only_triggers(tables):
    """The triggers that keep the ledger's tables append-only (checkpoint: from the seals migration on)."""
    return {f"{table}_no_{action}" for table in ("entry", "transfer", "checkpoint") if table in tables
            for action in ("update", "delete")}


def check_database_file(path):
    """Run integrity_check and the ledger verify on an SQLite file; refuse one that is no Linli database."""
    with open(path, "rb") as file:
        if file.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            raise click.ClickException(f"{path} is not an SQLite database")
    database = peewee.SqliteDatabase(str(path), pragmas={"query_only": 1})
    try:
        with database.connection_context():
            integrity = [row[0] for row in database.execute_sql("PRAGMA integrity_check")]
            tables = set(database.get_tables())
            missing = LINLI_TABLES - tables
            if missing:
                raise click.ClickException(f"{path} is not a Linli database: no {', '.join(sorted(missing))} table")
            triggers = {row[0] for row in database.execute_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
            gone = _append_only_triggers(tables) - triggers
            if gone:  # a ledger whose guards were taken away is no backup to trust
                raise click.ClickException(f"{path}: the ledger's append-only triggers are missing "
                                           f"({', '.join(sorted(gone))})")
            report = None
            if integrity == ["ok"]:
                models = [ledger.Account, ledger.Transfer, ledger.Entry, ledger.models.Checkpoint]
                with database.bind_ctx(models, bind_refs=False, bind_backrefs=False):
                    report = ledger.verify(sealed="checkpoint" in tables)
    except peewee.DatabaseError as exc:
        raise click.ClickException(f"{path} is not a readable SQLite database: {exc}") from None
    return DatabaseCheck(os.path.getsize(path), integrity, report)


def _pending_migrations(path):
    database = peewee.SqliteDatabase(str(path))
    with database.connection_context():
        status = Runner(database, current_app.config["MIGRATIONS_DIR"]).status()
    return [m.name for m in status if m.path is not None and m.applied is None]


def _without_password(url):
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        netloc = f"{userinfo.split(':', 1)[0]}@{host}"
    query = "&".join(p for p in parts.query.split("&") if p and not p.lower().startswith("password="))
    return urlunsplit(parts._replace(scheme="postgresql", netloc=netloc, query=query))


def _live_sqlite_path(path):
    """The live database file, or a refusal naming pg_dump/pg_restore when it is PostgreSQL."""
    if ledger.is_postgresql():
        url = shlex.quote(_without_password(current_app.config["DATABASE_URL"]))
        file = shlex.quote(str(path))
        raise click.ClickException(
            "DATABASE_URL points at PostgreSQL; back up and restore it with PostgreSQL's own tools:\n"
            f"  backup:  pg_dump --format=custom --file={file} {url}\n"
            f"  restore: pg_restore --clean --if-exists --single-transaction --dbname={url} {file}\n"
            "(they take the password from PGPASSWORD or ~/.pgpass); "
            "then run `flask --app web ledger verify`"
        )
    if not ledger.is_sqlite() or ledger.db.obj.database == ":memory:":
        raise click.ClickException("backup and restore work on an SQLite file or PostgreSQL only")
    return Path(ledger.db.obj.database)


@click.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite PATH when it exists.")
@with_appcontext
def backup(path, force):
    """Copy the live SQLite database to PATH (safe while Linli runs), then check the copy."""
    live = _live_sqlite_path(path)
    if not live.is_file():
        raise click.ClickException(f"no database at {live}")
    live_files = [live, live.with_name(live.name + "-wal"), live.with_name(live.name + "-shm"),
                  live.with_name(live.name + "-journal")]
    if any(path.resolve() == f.resolve() for f in live_files):
        raise click.ClickException(f"{path} is the live database or one of its files; back up elsewhere")
    if path.exists() and not force:
        raise click.ClickException(f"{path} exists; pass --force to overwrite it")
    if not path.parent.is_dir():
        raise click.ClickException(f"no directory {path.parent}")
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    os.close(handle)
    try:
        with closing(sqlite3.connect(live, timeout=30)) as source, closing(sqlite3.connect(partial)) as target:
            source.backup(target)
            # One self-contained file: no -wal or -shm beside the copy.
            target.execute("PRAGMA journal_mode=DELETE")
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    check = check_database_file(path)
    if not check.ok:
        for problem in check.problems:
            click.echo(problem, err=True)
    click.echo(f"backup {path}: {check.summary()}")
    if not check.ok:
        raise SystemExit(1)


@click.command("restore")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Replace the live database without asking.")
@with_appcontext
def restore(path, yes):
    """Replace the live SQLite database with the backup at PATH, once the backup passes every check."""
    live = _live_sqlite_path(path)
    if not path.is_file():
        raise click.ClickException(f"no file at {path}")
    if live.exists() and path.samefile(live):
        raise click.ClickException(f"{path} is the live database")
    check = check_database_file(path)
    if not check.ok:
        for problem in check.problems:
            click.echo(problem, err=True)
        raise click.ClickException(f"refusing to restore {path}: {check.summary()}")
    if not yes:
        click.confirm(
            f"Replace {live} with {path} ({check.summary()})? Everything written since that backup is lost",
            abort=True,
        )
    live.parent.mkdir(parents=True, exist_ok=True)
    try:
        # One write transaction into the live file: running processes see the old or the new database.
        with closing(sqlite3.connect(path)) as source, closing(sqlite3.connect(live, timeout=30)) as target:
            source.backup(target)
    except sqlite3.Error as exc:
        raise click.ClickException(f"restore failed, the live database is unchanged: {exc}") from None
    click.echo(f"restored {path} into {live}: {check_database_file(live).summary()}")
    pending = _pending_migrations(live)
    if pending:
        click.echo(f"{len(pending)} migration(s) pending: run `flask --app web init-db`")
