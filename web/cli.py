"""The `flask --app web ...` commands."""

import csv
import getpass
import json
import os
import secrets
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

import ledger
from botapp import android, sms
from botapp.segments import segments
from botapp.settings import ANDROID
from community import Community, CommunityError, Resident, Staff, places, staffing
from community.logins import unlock, unlock_address
from community.notices import queue_reminders
from community.people import create_staff, get_community, import_residents, read_resident_csv
from community.rules import install_default_rules
from ledger.checkpoints import make_checkpoint, store_checkpoint, verify_against
from ledger.keys import current_key

from . import demo
from .backup import backup, restore


def register(app):
    """Attach Linli's commands to the app's CLI."""
    for command in (init_db, ledger_group, create_staff_command, import_residents_command,
                    demo_data, queue_reminders_command, chat, unlock_command, backup, restore,
                    sms_gateway_group, communities_group, staff_group):
        app.cli.add_command(command)


SEALS_MIGRATION = "0015_entry_seals"


def migrate_and_seed():
    """Migrate the schema and install the default point rules."""
    applied = ledger.migrate(current_app.config["MIGRATIONS_DIR"])
    if SEALS_MIGRATION in applied and ledger.Entry.select().exists():
        # Entries written before seals existed: a checkpoint stored now vouches for them.
        store_checkpoint(current_key())
        applied.append("(a stored checkpoint vouches for the entries written before seals)")
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
@click.option("--against", "checkpoint_file", type=click.File("rb"), default=None,
              help="a checkpoint made earlier: prove nothing before it changed")
def ledger_verify(checkpoint_file):
    """Recompute every hash chain and balance; exit 1 naming each problem."""
    with ledger.db.connection_context():
        report = ledger.verify()
        problems = list(report.problems)
        if checkpoint_file is not None:
            try:
                kept = json.loads(checkpoint_file.read())
            except ValueError:
                kept = None
            problems += verify_against(kept, current_key())
    for problem in problems:
        click.echo(problem, err=True)
    click.echo(report.summary() + (" · checkpoint ok" if checkpoint_file is not None and not problems else ""))
    if problems:
        raise SystemExit(1)


@ledger_group.command("checkpoint")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write it to this file (kept elsewhere); without it, print it for paper")
def ledger_checkpoint(out):
    """A signed summary of the ledger now: keep it outside the database, verify against it later."""
    with ledger.db.connection_context():
        made = make_checkpoint(current_key())
    text = json.dumps(made, ensure_ascii=False, indent=1)
    if out is None:
        click.echo(text)
        return
    if out.exists():
        raise click.ClickException(f"{out} exists; checkpoints are never overwritten")
    out.write_text(text + "\n", encoding="utf-8")
    out.chmod(0o600)
    click.echo(f"checkpoint {out}: {len(made['accounts'])} accounts, {made['transfers']} transfers")


@ledger_group.command("vouch")
@click.option("--yes", is_flag=True, help="do not ask")
def ledger_vouch(yes):
    """After changing LEDGER_KEY: vouch for every entry so far with a checkpoint stored in the database.

    Run `ledger verify` under the old key first; this trusts what is there now.
    """
    with ledger.db.connection_context():
        report = ledger.verify()
        others = [p for p in report.problems if "not sealed with the ledger key" not in p]
        if others:
            for problem in others:
                click.echo(problem, err=True)
            raise click.ClickException("the ledger has other problems; nothing was vouched for")
        unsealed = len(report.problems)
        if unsealed and not yes:
            click.confirm(f"{unsealed} entries are not sealed with this key. Vouch for them?", abort=True)
        with ledger.db.atomic():
            made = store_checkpoint(current_key())
    click.echo(f"stored a checkpoint of {len(made['accounts'])} accounts and {made['transfers']} transfers; "
               "`ledger verify` now trusts the entries it covers")


@click.command("create-staff")
@click.argument("username")
@click.option("--role", type=click.Choice(Staff.ROLES), required=True, help="What the user may do.")
@click.option("--community", "community_code", help="Community code (not for admins).")
@click.option("--password", help="Password; asked for when omitted (or generated with --generate).")
@click.option("--generate", is_flag=True, help="Generate a password and print it once.")
@click.option("--display-name", default="", help="The name colleagues know them by (陈主任).")
@with_appcontext
def create_staff_command(username, role, community_code, password, generate, display_name):
    """Create a staff user with a role in a community."""
    if generate:
        password = secrets.token_urlsafe(12)
    elif not password:
        password = getpass.getpass("Password: ")
    try:
        with ledger.db.connection_context():
            community = get_community(community_code) if community_code else None
            staff = create_staff(username, password, role, community, display_name=display_name)
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
    click.echo(f"{verb} {report.created} residents, {len(report.errors)} rows with errors"
               + (f", {report.unchanged} already registered (left as they are)" if report.unchanged else ""))
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
    lines = ["demo staff:", *(f"  {username:<14} {role:<12} {password}" for username, role, password in credentials)]
    path = current_app.config.get("DEMO_CREDENTIALS") or os.path.join(current_app.instance_path,
                                                                        "demo-credentials.txt")
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(path, 0o600)
    click.echo("\n".join(lines))
    click.echo(f"(also kept in {path}, readable only by you)")


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


@click.group("staff", cls=AppGroup)
def staff_group():
    """Staff accounts: list, disable a leaver, enable again, reset a forgotten password."""


@staff_group.command("list")
def staff_list_command():
    """Every account: username, name, role, community, last login, whether it is active."""
    for s in staffing.staff_list():
        where = s.community.code if s.community_id else "-"
        last = s.last_login_at.strftime("%Y-%m-%d %H:%M") if s.last_login_at else "never"
        click.echo(f"{s.username}\t{s.display_name}\t{s.role}\t{where}\t{last}\t{'active' if s.active else 'disabled'}")


def _staff_change(change, username):
    try:
        return change(staffing.find_staff(username))
    except CommunityError as exc:
        raise _refused(exc) from None


@staff_group.command("disable")
@click.argument("username")
def staff_disable(username):
    """Disable an account: its open sessions end at once."""
    _staff_change(lambda s: staffing.set_active(None, s, False), username)
    click.echo(f"{username} disabled")


@staff_group.command("enable")
@click.argument("username")
def staff_enable(username):
    """Enable an account again (sessions from before stay ended)."""
    _staff_change(lambda s: staffing.set_active(None, s, True), username)
    click.echo(f"{username} enabled")


@staff_group.command("reset-password")
@click.argument("username")
def staff_reset_password(username):
    """Print a one-time password; it must be changed at the next login."""
    password = _staff_change(lambda s: staffing.reset_password(None, s), username)
    click.echo(f"one-time password for {username}: {password}")


@click.group("communities", cls=AppGroup)
def communities_group():
    """The district's places: district, street, community, grid, unit."""


def _refused(exc):
    """A refusal on the command line: the error, and the value it is about."""
    values = ", ".join(str(v) for v in getattr(exc, "details", {}).values())
    return click.ClickException(f"{exc} ({values})" if values else str(exc))


@communities_group.command("add")
@click.argument("code")
@click.argument("name")
@click.option("--level", required=True, type=click.Choice(places.LEVELS))
@click.option("--parent", "parent_code", default=None, help="the code of the place it belongs to")
@click.option("--name-en", default="", help="its English name (optional)")
@click.option("--phone", default="", help="the office's phone number, given in the SMS menu for help")
def communities_add(code, name, level, parent_code, name_en, phone):
    """Add a place of the grid."""
    try:
        place = places.add_place(code, name, level, parent_code, name_en, phone)
    except CommunityError as exc:
        raise _refused(exc) from None
    click.echo(f"added {place.level} {place.code} {place.name_zh}")


@communities_group.command("set")
@click.argument("code")
@click.option("--name", default=None)
@click.option("--name-en", default=None)
@click.option("--phone", default=None, help="the office's phone number ('' removes it)")
def communities_set(code, name, name_en, phone):
    """Rename a place or set its office phone number."""
    try:
        place = places.change_place(code, name_zh=name, name_en=name_en, phone=phone)
    except CommunityError as exc:
        raise _refused(exc) from None
    click.echo(f"{place.code} {place.name_zh} {place.name_en} {place.phone}".rstrip())


@communities_group.command("list")
def communities_list():
    """The tree of places, each under its parent."""
    for depth, place in places.tree():
        extra = f" ☎ {place.phone}" if place.phone else ""
        click.echo(f"{'  ' * depth}{place.code}  {place.name_zh}  [{place.level}]{extra}")


@communities_group.command("import")
@click.argument("csv_file", type=click.File("rb"))
def communities_import(csv_file):
    """Add and rename places from a CSV (code, name, level, parent; Chinese headers and GBK too)."""
    try:
        rows = places.read_places_csv(csv_file.read())
    except CommunityError as exc:
        raise _refused(exc) from None
    added, renamed, unchanged, problems = places.import_places(rows)
    for line, problem in problems:
        click.echo(f"line {line}: {problem}", err=True)
    click.echo(f"{added} added, {renamed} renamed, {unchanged} unchanged, {len(problems)} refused")
    if problems:
        raise SystemExit(1)


@click.group("sms-gateway", cls=AppGroup)
def sms_gateway_group():
    """The office phone running SMS Gateway for Android (SMS_PROVIDER=android)."""


def _phone_settings():
    config = current_app.config
    missing = [name for name in ANDROID if not config.get(name)]
    if missing:
        raise click.ClickException(f"set {', '.join(missing)} first")
    return config["ANDROID_SMS_URL"], config["ANDROID_SMS_USERNAME"], config["ANDROID_SMS_PASSWORD"]


@sms_gateway_group.command("check")
def sms_gateway_check():
    """Say whether the phone answers, with these credentials."""
    ok, said = android.check(*_phone_settings())
    click.echo(said)
    if not ok:
        raise SystemExit(1)


@sms_gateway_group.command("register-webhook")
def sms_gateway_register_webhook():
    """Register PUBLIC_BASE_URL/sms/android with the phone for received, sent, delivered and failed SMS."""
    base = current_app.config["PUBLIC_BASE_URL"]
    if not current_app.config.get("ANDROID_SMS_SIGNING_KEY"):
        raise click.ClickException("set ANDROID_SMS_SIGNING_KEY (the app's webhook signing key) first")
    try:
        added = android.register_webhooks(*_phone_settings(), base)
    except Exception as exc:  # the phone's own words, whatever the client raised
        raise click.ClickException(f"the phone did not take the webhooks: {type(exc).__name__}: {exc}") from None
    click.echo(f"{base.rstrip('/')}/sms/android: " + (", ".join(added) + " added" if added else "already registered"))


@click.command("unlock")
@click.argument("username", required=False)
@click.option("--address", default=None, help="a client address (203.0.113.9) to stop slowing down")
@with_appcontext
def unlock_command(username, address):
    """Let USERNAME log in again after too many failed logins, or lift an address's slowing down."""
    if not username and not address:
        raise click.UsageError("give a USERNAME or --address ADDR")
    with ledger.db.connection_context():
        if username:
            click.echo(f"{username}: {'unlocked' if unlock(username) else 'was not locked out'}")
        if address:
            click.echo(f"{address}: {'unlocked' if unlock_address(address) else 'was not slowed down'}")
