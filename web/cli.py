"""The `flask --app web ...` commands."""

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

import ledger


def register(app):
    """Attach Linli's commands to the app's CLI."""
    app.cli.add_command(init_db)
    app.cli.add_command(ledger_group)


@click.command("init-db")
@with_appcontext
def init_db():
    """Create the database or migrate it to the current schema (safe to run twice)."""
    with ledger.db.connection_context():
        applied = ledger.migrate(current_app.config["MIGRATIONS_DIR"])
    click.echo(f"applied: {', '.join(applied)}" if applied else "database is up to date")


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
