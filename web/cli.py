"""The `flask --app web ...` commands."""

import csv
import getpass
import os
import secrets
import shlex
import sqlite3
import sys
import tempfile
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import click
import peewee
from flask import current_app
from flask.cli import AppGroup, with_appcontext
from playhouse.migrations import Runner

import ledger
from botapp import sms
from botapp.segments import segments
from community import Community, CommunityError, Resident, Staff
from community.notices import queue_reminders
from community.people import create_staff, get_community, import_residents, read_resident_csv
from community.rules import install_default_rules

from . import demo


def register(app):
    """Attach Linli's commands to the app's CLI."""
    for command in (init_db, ledger_group, create_staff_command, import_residents_command,
                    demo_data, queue_reminders_command, chat, backup, restore):
        app.cli.add_command(command)


def migrate_and_seed():
    """Migrate the schema and install the default point rules."""
    applied = ledger.migrate(current_app.config["MIGRATIONS_DIR"])
    install_default_rules()
    return applied


@click.command("init-db")
@with_appcontext
def init_db():
    """Create the database or migrate it to the current schema (safe to run twice)."""
    with ledger.db.connection_context():
        applied = migrate_and_seed()
        empty = not Community.select().exists()
    click.echo(f"applied: {', '.join(applied)}" if applied else "database is up to date")
    if empty:
        click.echo("no communities yet: `flask --app web demo-data` creates a demo district")


@click.group("ledger", cls=AppGroup)
def ledger_group():
    """Inspect the points ledger."""


@ledger_group.command("verify")
def ledger_verify():
    """Recompute every hash chain and balance; exit 1 naming each problem."""
    with ledger.db.connection_context():
        report = ledger.verify()
    for problem in report.problems:
        click.echo(problem, err=True)
    click.echo(report.summary())
    if not report.ok:
        raise SystemExit(1)


@click.command("create-staff")
@click.argument("username")
@click.option("--role", type=click.Choice(Staff.ROLES), required=True, help="What the user may do.")
@click.option("--community", "community_code", help="Community code (not for admins).")
@click.option("--password", help="Password; asked for when omitted (or generated with --generate).")
@click.option("--generate", is_flag=True, help="Generate a password and print it once.")
@with_appcontext
def create_staff_command(username, role, community_code, password, generate):
    """Create a staff user with a role in a community."""
    if generate:
        password = secrets.token_urlsafe(12)
    elif not password:
        password = getpass.getpass("Password: ")
    try:
        with ledger.db.connection_context():
            community = get_community(community_code) if community_code else None
            staff = create_staff(username, password, role, community)
    except CommunityError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"created {staff.role} {staff.username}" + (f" password: {password}" if generate else ""))


@click.command("import-residents")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check every row and report, but create nothing.")
@with_appcontext
def import_residents_command(csv_file, dry_run):
    """Register residents from a CSV file with columns name, phone, community[, language, grid, unit]."""
    try:
        with ledger.db.connection_context():
            rows = read_resident_csv(csv_file.read_bytes())
            with click.progressbar(length=len(rows), label="importing", file=sys.stderr) as bar:
                report = import_residents(
                    rows, dry_run=dry_run, region=current_app.config["DEFAULT_REGION"], progress=bar.update
                )
    except (CommunityError, UnicodeDecodeError, csv.Error) as exc:
        raise click.ClickException(f"cannot read {csv_file}: {exc}") from None
    for line, message in report.errors:
        click.echo(f"line {line}: {message}", err=True)
    verb = "would create" if dry_run else "created"
    click.echo(f"{verb} {report.created} residents, {len(report.errors)} rows with errors")
    if report.errors:
        raise SystemExit(1)


@click.command("demo-data")
@click.option("--if-empty", is_flag=True, help="Do nothing (and succeed) when residents exist.")
@with_appcontext
def demo_data(if_empty):
    """Fill an empty database with a demo district: communities, staff, residents, activities."""
    with ledger.db.connection_context():
        migrate_and_seed()
        if Resident.select().exists():
            if if_empty:
                return
            raise click.ClickException("the database already has residents; demo data goes into an empty one")
        credentials = demo.create_demo_data()
    click.echo("demo staff (shown once):")
    for username, role, password in credentials:
        click.echo(f"  {username:<14} {role:<12} {password}")


@click.command("queue-reminders")
@with_appcontext
def queue_reminders_command():
    """Queue tomorrow's activity reminders (once per sign-up; safe to run often)."""
    with ledger.db.connection_context():
        click.echo(f"queued {queue_reminders()} reminders")


@click.command("chat")
@click.argument("phone")
@with_appcontext
def chat(phone):
    """Talk to Linli as the SMS resident PHONE: one message a line, replies with their segment counts."""
    dialogue = current_app.extensions["linli.dialogue"]
    click.echo("type a message and press Enter (Ctrl-D to quit)", err=True)
    for line in sys.stdin:
        text = line.rstrip("\n")
        with ledger.db.connection_context():
            reply = sms.receive(dialogue, f"chat-{secrets.token_hex(8)}", phone, text)
        if reply is None:
            click.echo("(no reply)")
        else:
            click.echo(f"{reply}\n[{segments(reply)} SMS segment(s)]")


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


def check_database_file(path):
    """Run integrity_check and the ledger verify on an SQLite file; refuse one that is no Linli database."""
    with open(path, "rb") as file:
        if file.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            raise click.ClickException(f"{path} is not an SQLite database")
    database = peewee.SqliteDatabase(str(path), pragmas={"query_only": 1})
    try:
        with database.connection_context():
            integrity = [row[0] for row in database.execute_sql("PRAGMA integrity_check")]
            missing = LINLI_TABLES - set(database.get_tables())
            if missing:
                raise click.ClickException(f"{path} is not a Linli database: no {', '.join(sorted(missing))} table")
            report = None
            if integrity == ["ok"]:
                models = [ledger.Account, ledger.Transfer, ledger.Entry]
                with database.bind_ctx(models, bind_refs=False, bind_backrefs=False):
                    report = ledger.verify()
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
    if path.exists():
        if path.samefile(live):
            raise click.ClickException(f"{path} is the live database")
        if not force:
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
