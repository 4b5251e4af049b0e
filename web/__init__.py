"""Linli's web process: staff pages, the counter, webhooks, health, and the `flask` CLI."""

import os
import secrets
from pathlib import Path

from flask import Flask

import ledger

from . import cli, health

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _secret_key(instance_path):
    """Read SECRET_KEY, or keep a random one in the instance folder for development."""
    key_file = Path(instance_path) / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    key = secrets.token_hex(32)
    key_file.write_text(key)
    key_file.chmod(0o600)
    return key


def create_app(test_config=None):
    """Build the Flask app from the environment, or from `test_config` in tests."""
    app = Flask(
        __name__,
        instance_path=str(PROJECT_ROOT / "instance"),
        template_folder=str(PROJECT_ROOT / "templates"),
    )
    os.makedirs(app.instance_path, exist_ok=True)
    if test_config is None:
        app.config.update(
            DATABASE_URL=os.environ.get("DATABASE_URL", "sqlite:///instance/linli.db"),
            SECRET_KEY=os.environ.get("SECRET_KEY") or _secret_key(app.instance_path),
            PUBLIC_BASE_URL=os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000"),
        )
    else:
        app.config.update(test_config)
    app.config["MIGRATIONS_DIR"] = str(PROJECT_ROOT / "migrations")

    ledger.open_database(_resolve_sqlite_path(app.config["DATABASE_URL"]))
    # peewee connects on the first query of a request; the connection is closed after it.
    app.teardown_appcontext(_close)

    app.register_blueprint(health.bp)
    cli.register(app)
    return app


def _resolve_sqlite_path(url):
    """Anchor a relative SQLite path at the project root, wherever the process was started."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
        return prefix + str(PROJECT_ROOT / url[len(prefix):])
    return url


def _close(exc):
    if not ledger.db.is_closed():
        ledger.db.close()
