"""The community commands of the `flask` CLI: create-staff, import-residents, demo-data."""

import stat
from pathlib import Path

import ledger
from catalog.models import Goods, Redemption
from community import Activity, Community, Resident, Signup, Staff
from community.people import authenticate, create_community
from ledger.models import Transfer


def test_create_staff_with_a_role_in_a_community(runner, app):
    with app.app_context():
        create_community("DM", "东梅社区", "Dongmei")
    result = runner.invoke(args=["create-staff", "wang", "--role", "coordinator", "--community", "DM",
                                 "--password", "a long secret"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        staff = authenticate("wang", "a long secret")
        assert staff.role == Staff.COORDINATOR and staff.community.code == "DM"


def test_create_staff_refuses_an_unknown_community_and_a_short_password(runner, app):
    unknown = runner.invoke(args=["create-staff", "li", "--role", "clerk", "--community", "XX",
                                  "--password", "a long secret"])
    assert unknown.exit_code != 0 and "No such community" in unknown.output
    short = runner.invoke(args=["create-staff", "li", "--role", "admin", "--password", "short"])
    assert short.exit_code != 0 and "at least 8" in short.output
    with app.app_context():
        assert not Staff.select().exists()


def test_generated_passwords_are_printed_once(runner, app):
    result = runner.invoke(args=["create-staff", "boss", "--role", "admin", "--generate"])
    assert result.exit_code == 0
    password = result.output.split("password: ")[1].strip()
    with app.app_context():
        assert authenticate("boss", password).role == Staff.ADMIN


CSV = (
    "name,phone,community,language,grid,unit\n"
    "王阿姨,138 0013 8000,DM,zh_Hans,G1,U1\n"
    "Bad Phone,12345,DM,,,\n"
    "李叔,+86 139-0013-9000,DM,en,G2,U3\n"
    "Nowhere,13700137000,XX,,,\n"
    "Twice,8613800138000,DM,,,\n"
    "Too,13600136000,DM,,,,extra\n"
)


def test_import_residents_reports_bad_rows_and_keeps_the_good(runner, app, tmp_path):
    with app.app_context():
        create_community("DM", "东梅社区", "Dongmei")
    path = tmp_path / "residents.csv"
    path.write_text(CSV, encoding="utf-8")

    dry = runner.invoke(args=["import-residents", str(path), "--dry-run"])
    assert dry.exit_code == 1
    assert "would create 2 residents, 4 rows with errors" in dry.output
    with app.app_context():
        assert Resident.select().count() == 0

    real = runner.invoke(args=["import-residents", str(path)])
    assert real.exit_code == 1
    assert "created 2 residents, 4 rows with errors" in real.output
    for line in ("line 3:", "line 5:", "line 6:", "line 7:"):
        assert line in real.output
    with app.app_context():
        phones = sorted(r.phone for r in Resident.select())
        assert phones == ["+8613800138000", "+8613900139000"]
        assert Resident.get(Resident.phone == "+8613900139000").language == "en"


def test_import_refuses_a_file_without_the_needed_columns(runner, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("who,number\nx,1\n", encoding="utf-8")
    result = runner.invoke(args=["import-residents", str(path)])
    assert result.exit_code != 0 and "community, name, phone" in result.output


def test_demo_data_builds_a_living_district_once(runner, app):
    result = runner.invoke(args=["demo-data"])
    assert result.exit_code == 0, result.output
    assert "admin" in result.output and "dm-clerk" in result.output
    kept = Path(app.config["DEMO_CREDENTIALS"])
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert kept.read_text() in result.output and "dm-clerk" in kept.read_text()
    with app.app_context():
        assert Community.select().where(Community.level == Community.COMMUNITY).count() == 2
        assert Resident.select().count() == 50
        assert {a.category for a in Activity.select()} == {"rescue", "mediation", "volunteering"}
        assert Signup.select().where(Signup.state == Signup.CONFIRMED).count() > 0
        assert Goods.select().count() == 10 and Redemption.select().count() > 0
        assert ledger.verify().ok
        # The report's chart shows a living district: awards in most of the past eight weeks.
        awards = Transfer.select().where(Transfer.kind == Transfer.AWARD)
        assert len({t.created_at.isocalendar()[:2] for t in awards}) >= 6
    again = runner.invoke(args=["demo-data"])
    assert again.exit_code != 0 and "already has residents" in again.output
    assert runner.invoke(args=["demo-data", "--if-empty"]).exit_code == 0
