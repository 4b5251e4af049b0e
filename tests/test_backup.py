"""`flask --app web backup` and `restore`: a checked copy of the live SQLite file, taken while
another process writes, and a restore that refuses anything but a sound Linli database."""

import sqlite3
import time
from contextlib import closing
from pathlib import Path

import community_factory as make
import pytest
from processes import CONTEXT

import ledger
from catalog import codes
from catalog.checkout import checkout
from catalog.goods import create_goods, receive_stock
from community.awards import confirm_participation, report_deed
from community.models import Resident, Staff
from web import create_app

SECRET = "counter-secret"


@pytest.fixture
def live(db_url):
    """The live database file (SQLite only)."""
    if not db_url.startswith("sqlite:///"):
        pytest.skip("backup and restore of a file: SQLite only")
    return Path(db_url.removeprefix("sqlite:///"))


@pytest.fixture
def district(app):
    """A community with a coordinator, a resident with three awards and one checkout, all through the services."""
    with ledger.db.connection_context():
        place = make.build_place()
        boss = make.coordinator(place.north)
        resident = make.resident(place.north)
        for _ in range(3):
            confirm_participation(boss, report_deed(boss, resident, "volunteering", "night watch"))
        soap = create_goods(boss, place.north, "肥皂", "Soap", 100)
        receive_stock(boss, soap, 5)
        code = codes.find_qr_code(codes.issue_qr_code(resident, SECRET), SECRET)
        checkout(make.clerk(place.north), code, [(soap.id, 1)], checkout_key="first")
    return boss, resident


def award(boss, resident, note="more work"):
    with ledger.db.connection_context():
        confirm_participation(boss, report_deed(boss, resident, "volunteering", note))


def dump(path):
    """Every table's schema and rows, as SQL text."""
    with closing(sqlite3.connect(path)) as conn:
        return list(conn.iterdump())


def count_transfers(path):
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute("SELECT count(*) FROM transfer").fetchone()[0]


def test_a_restore_brings_back_exactly_the_backed_up_data(runner, live, district, tmp_path):
    copy = tmp_path / "copies" / "linli-backup.db"
    copy.parent.mkdir()
    before = dump(live)

    result = runner.invoke(args=["backup", str(copy)])
    assert result.exit_code == 0, result.output
    assert f"backup {copy}: " in result.output
    assert "4 transfers, integrity ok, ledger ok" in result.output
    assert [p.name for p in copy.parent.iterdir()] == [copy.name]  # no partial file left behind
    assert dump(copy) == before

    award(*district)
    after = dump(live)
    assert after != before

    declined = runner.invoke(args=["restore", str(copy)], input="n\n")
    assert declined.exit_code != 0 and "Everything written since that backup is lost" in declined.output
    assert dump(live) == after

    result = runner.invoke(args=["restore", str(copy), "--yes"])
    assert result.exit_code == 0, result.output
    assert "4 transfers, integrity ok, ledger ok" in result.output
    assert dump(live) == before
    with closing(sqlite3.connect(live)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    verify = runner.invoke(args=["ledger", "verify"])
    assert verify.exit_code == 0, verify.output
    assert "ledger OK" in verify.output


def post_awards(url, boss_id, resident_id, posted, stop):
    """Confirm deeds one after another until told to stop, counting the awards."""
    database = ledger.open_database(url)
    with database.connection_context():
        boss, resident = Staff.get_by_id(boss_id), Resident.get_by_id(resident_id)
        while not stop.is_set():
            confirm_participation(boss, report_deed(boss, resident, "volunteering", "busy evening"))
            with posted.get_lock():
                posted.value += 1


def test_a_backup_taken_while_another_process_writes_is_sound(runner, live, district, db_url, tmp_path):
    boss, resident = district
    base = count_transfers(live)
    posted, stop = CONTEXT.Value("i", 0), CONTEXT.Event()
    writer = CONTEXT.Process(target=post_awards, args=(db_url, boss.id, resident.id, posted, stop))
    writer.start()
    backups = []
    try:
        deadline = time.monotonic() + 60
        while posted.value < 5 and writer.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert posted.value >= 5, "the writer did not get going"
        for number in range(3):
            copy = tmp_path / f"copy{number}.db"
            first = posted.value
            result = runner.invoke(args=["backup", str(copy)])
            backups.append((copy, first, posted.value, result))
    finally:
        stop.set()
        writer.join(60)
    assert writer.exitcode == 0
    for copy, first, last, result in backups:
        assert result.exit_code == 0, result.output
        assert "integrity ok, ledger ok" in result.output
        # The copy is one consistent moment: whole awards only, between the counts before and after.
        assert first <= count_transfers(copy) - base <= last + 1
    assert posted.value > backups[0][1]
    assert count_transfers(live) - base == posted.value


def tamper(path):
    """Raise one entry's amount in a database file, the append-only trigger dropped and put back."""
    with closing(sqlite3.connect(path)) as conn:
        trigger = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'entry_no_update'").fetchone()[0]
        conn.execute("DROP TRIGGER entry_no_update")
        conn.execute("UPDATE entry SET amount = amount + 500 WHERE id = (SELECT max(id) FROM entry)")
        conn.execute(trigger)
        conn.commit()


def test_restore_refuses_a_tampered_backup_and_leaves_the_live_database_alone(runner, live, district, tmp_path):
    copy = tmp_path / "backup.db"
    assert runner.invoke(args=["backup", str(copy)]).exit_code == 0
    tamper(copy)
    award(*district)
    before = dump(live)

    result = runner.invoke(args=["restore", str(copy), "--yes"])
    assert result.exit_code != 0
    assert f"refusing to restore {copy}" in result.output and "ledger FAILED" in result.output
    assert "hash does not match its content" in result.stderr
    assert dump(live) == before


def test_restore_refuses_a_backup_whose_append_only_triggers_were_dropped(runner, live, district, tmp_path):
    copy = tmp_path / "backup.db"
    assert runner.invoke(args=["backup", str(copy)]).exit_code == 0
    with closing(sqlite3.connect(copy)) as conn:
        conn.execute("DROP TRIGGER entry_no_update")
        conn.commit()
    before = dump(live)
    result = runner.invoke(args=["restore", str(copy), "--yes"])
    assert result.exit_code != 0 and "append-only triggers are missing (entry_no_update)" in result.output
    assert dump(live) == before


def test_a_backup_of_a_tampered_database_is_kept_but_fails(runner, live, district, tmp_path):
    tamper(live)
    copy = tmp_path / "backup.db"
    result = runner.invoke(args=["backup", str(copy)])
    assert result.exit_code == 1
    assert "ledger FAILED" in result.output and "hash does not match its content" in result.stderr
    assert copy.is_file()


def test_restore_refuses_files_that_are_not_linli_databases(runner, live, district, tmp_path):
    before = dump(live)
    text = tmp_path / "residents.csv"
    text.write_text("name,phone\n王阿姨,13800138000\n", encoding="utf-8")
    other = tmp_path / "other.db"
    with closing(sqlite3.connect(other)) as conn:
        conn.execute("CREATE TABLE account (id INTEGER PRIMARY KEY)")
    truncated = tmp_path / "truncated.db"
    truncated.write_bytes(live.read_bytes()[:100] + b"\0" * 5000)

    for path, message in ((text, "is not an SQLite database"),
                          (other, "is not a Linli database: no entry, schema_migration, transfer table"),
                          (truncated, "is not a"),
                          (tmp_path / "missing.db", "no file at")):
        result = runner.invoke(args=["restore", str(path), "--yes"])
        assert result.exit_code != 0, path
        assert message in result.output, result.output
    assert dump(live) == before


def test_backup_refuses_to_overwrite_without_force(runner, live, district, tmp_path):
    copy = tmp_path / "backup.db"
    copy.write_text("yesterday's notes", encoding="utf-8")
    result = runner.invoke(args=["backup", str(copy)])
    assert result.exit_code != 0 and "pass --force" in result.output
    assert copy.read_text(encoding="utf-8") == "yesterday's notes"

    assert runner.invoke(args=["backup", str(live), "--force"]).exit_code != 0
    forced = runner.invoke(args=["backup", str(copy), "--force"])
    assert forced.exit_code == 0, forced.output
    assert count_transfers(copy) == 4
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_on_postgresql_both_commands_give_the_pg_dump_commands(runner, db_url, tmp_path):
    if not db_url.startswith("postgres"):
        pytest.skip("PostgreSQL only")
    for args in (["backup", str(tmp_path / "linli.dump")], ["restore", str(tmp_path / "linli.dump"), "--yes"]):
        result = runner.invoke(args=args)
        assert result.exit_code != 0
        assert "pg_dump --format=custom --file=" in result.output
        assert "pg_restore --clean --if-exists" in result.output
        assert not (tmp_path / "linli.dump").exists()


def test_the_postgresql_guidance_never_shows_the_password(tmp_path):
    url = "postgresql://linli:s3cret@db.example:5432/linli?sslmode=require&password=s3cret"
    app = create_app({"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "test"})
    result = app.test_cli_runner().invoke(args=["backup", str(tmp_path / "linli.dump")])
    assert result.exit_code != 0
    assert "s3cret" not in result.output
    assert (f"pg_dump --format=custom --file={tmp_path / 'linli.dump'} "
            "'postgresql://linli@db.example:5432/linli?sslmode=require'") in result.output
    assert "pg_restore --clean --if-exists --single-transaction " \
           "--dbname='postgresql://linli@db.example:5432/linli?sslmode=require'" in result.output
