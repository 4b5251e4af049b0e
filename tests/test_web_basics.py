"""The app factory, /healthz and the CLI commands."""

import logging

import ledger
from web import MaskPhoneNumbers, create_app


def test_healthz_reports_a_reachable_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_healthz_answers_503_when_the_database_is_unreachable(tmp_path):
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where a directory should be")
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "DATABASE_URL": f"sqlite:///{blocked}/linli.db"})
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["database"] == "unreachable"


def test_init_db_creates_the_schema_and_is_safe_to_run_twice(empty_db_url):
    runner = create_app({"TESTING": True, "SECRET_KEY": "x", "DATABASE_URL": empty_db_url}).test_cli_runner()
    first = runner.invoke(args=["init-db"])
    assert first.exit_code == 0, first.output
    assert "applied: 0001_ledger" in first.output
    assert {"account", "transfer", "entry"} <= set(ledger.db.get_tables())
    second = runner.invoke(args=["init-db"])
    assert second.exit_code == 0
    assert "up to date" in second.output


def test_ledger_verify_passes_on_a_sound_ledger(runner, app):
    with ledger.db.connection_context():
        issuer = ledger.open_account("issuer:x", "issuer")
        resident = ledger.open_account("resident:x", "resident")
        ledger.transfer(issuer, resident, 150, kind="award", actor="staff:1", idempotency_key="a")
    result = runner.invoke(args=["ledger", "verify"])
    assert result.exit_code == 0, result.output
    assert "ledger OK: 2 accounts, 1 transfers, 2 entries" in result.output


def test_every_cli_command_has_help_text(app):
    def walk(command, path):
        yield path, command
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, f"{path} {name}")

    commands = [pair for name, cmd in app.cli.commands.items() for pair in walk(cmd, name)]
    assert {"init-db", "ledger verify"} <= {path for path, _ in commands}
    assert [path for path, cmd in commands if not (cmd.help or "").strip()] == []


def test_request_log_lines_never_carry_a_full_phone_number(app):
    record = logging.LogRecord("werkzeug", logging.INFO, __file__, 1, '"%s" %s', ("GET /residents/?q=13800138000", 200),
                               None)
    MaskPhoneNumbers().filter(record)
    assert "13800138000" not in record.getMessage() and "138****8000" in record.getMessage()
    assert any(isinstance(f, MaskPhoneNumbers) for f in logging.getLogger("werkzeug").filters)
