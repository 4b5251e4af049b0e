"""A database as an earlier release left it, for the tests of the migrations that follow."""

from pathlib import Path

from web import create_app

ROOT = Path(__file__).resolve().parent.parent


def app_before(migration, url, tmp_path):
    """An app on `url` migrated with every migration before `migration` (say "0016"); point its
    MIGRATIONS_DIR back at the project's to upgrade."""
    old = tmp_path / "migrations-before"
    old.mkdir()
    for path in sorted((ROOT / "migrations").glob("00*.py")):
        if path.name < migration:
            (old / path.name).symlink_to(path)
    app = create_app({"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "test"})
    app.config["MIGRATIONS_DIR"] = str(old)
    assert app.test_cli_runner().invoke(args=["init-db"]).exit_code == 0
    return app


def upgrade(app):
    """Apply the rest of the project's migrations; return what init-db said."""
    app.config["MIGRATIONS_DIR"] = str(ROOT / "migrations")
    done = app.test_cli_runner().invoke(args=["init-db"])
    assert done.exit_code == 0, done.output
    return done.output
