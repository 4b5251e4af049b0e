"""Communities, residents, staff roles, point rules, the audit log and the CSV import."""

import json

import community_factory as f
import pytest

import ledger
from community import activities, awards, errors, people, rules
from community.models import AuditEvent, Community, PointRule, Resident, Staff
from ledger import Account

E164 = "+8613800138000"


@pytest.fixture
def place(db):
    return f.build_place()


# --- phone numbers -----------------------------------------------------------------------


@pytest.mark.parametrize("written", ["138 0013 8000", "+86 138-0013-8000", "8613800138000", "13800138000"])
def test_the_ways_people_write_a_phone_number_are_one_e164_number(written):
    assert people.normalise_phone(written, "CN") == E164


def test_a_number_from_another_country_keeps_its_own_code():
    assert people.normalise_phone("+1 202 555 0123", "CN") == "+12025550123"


@pytest.mark.parametrize(
    "written",
    ["", "   ", None, "12345", "not a phone", "138 0013 800", "+86 138 0013 80000", "+999 1234567",
     "0000000", "1" * 40],
)
def test_invalid_phone_numbers_are_refused(written):
    with pytest.raises(errors.InvalidPhone):
        people.normalise_phone(written, "CN")


def test_the_three_spellings_register_one_person(place):
    first = people.register_resident(place.north, "王芳", phone="138 0013 8000")
    assert first.phone == E164
    for other in ("+86 138-0013-8000", "8613800138000"):
        with pytest.raises(errors.DuplicateResident):
            people.register_resident(place.south, "Someone else", phone=other)
    assert Resident.select().count() == 1
    for written in ("138 0013 8000", "+86 138-0013-8000", "8613800138000"):
        assert people.find_resident(phone=written).id == first.id


def test_a_refused_registration_leaves_no_resident_and_no_ledger_account(place):
    people.register_resident(place.north, "王芳", phone="138 0013 8000")
    accounts = Account.select().count()
    with pytest.raises(errors.DuplicateResident):
        people.register_resident(place.north, "王芳 again", phone="+8613800138000")
    with pytest.raises(errors.InvalidPhone):
        people.register_resident(place.north, "Bad phone", phone="12345")
    assert Account.select().count() == accounts
    assert Resident.select().count() == 1


def test_a_duplicate_telegram_account_is_a_duplicate_resident(place):
    people.register_resident(place.north, "A", telegram_id=42)
    with pytest.raises(errors.DuplicateResident):
        people.register_resident(place.north, "B", telegram_id=42)
    assert people.find_resident(telegram_id=42).display_name == "A"


def test_residents_without_a_phone_do_not_collide(place):
    a = people.register_resident(place.north, "A")
    b = people.register_resident(place.north, "B")
    assert a.phone is None and b.phone is None
    assert a.account_id != b.account_id


def test_find_resident_with_an_unparsable_phone_finds_nobody(place):
    f.resident(place.north)
    assert people.find_resident(phone="not a phone") is None
    assert people.find_resident(phone="139 9999 9999") is None


def test_changing_a_phone_to_someone_elses_is_a_duplicate(place):
    boss = f.admin()
    people.register_resident(place.north, "A", phone="138 0013 8000")
    b = people.register_resident(place.north, "B", phone="139 0000 0001")
    with pytest.raises(errors.DuplicateResident):
        people.update_resident(boss, b, phone="8613800138000")
    assert people.get_resident(b.id).phone == "+8613900000001"
    changed = people.update_resident(boss, b, phone="139-0000-0002")
    assert changed.phone == "+8613900000002"


def test_mask_phone_hides_the_middle_digits():
    masked = people.mask_phone(E164)
    assert masked == "138****8000"
    assert "0013" not in masked
    assert masked.endswith("8000")
    assert people.mask_phone("") == ""
    assert people.mask_phone(None) == ""
    assert people.mask_phone("+861234") == "****"
    assert people.mask_phone("+85291234567") == "+852****4567"  # other countries keep their code


@pytest.mark.parametrize("name", ["", "   ", "x" * 61, "tab\x07bell"])
def test_a_resident_needs_a_printable_name(place, name):
    with pytest.raises(errors.InvalidInput):
        people.register_resident(place.north, name)
    assert Resident.select().count() == 0


def test_names_are_tidied(place):
    resident = people.register_resident(place.north, "  王   芳 ")
    assert resident.display_name == "王 芳"


def test_closed_residents_cannot_act(place):
    boss = f.admin()
    resident = f.resident(place.north)
    people.ensure_active(resident)
    closed = people.close_resident(boss, resident)
    assert closed.status == Resident.CLOSED
    with pytest.raises(errors.ResidentClosed):
        people.ensure_active(closed)
    with pytest.raises(errors.ResidentNotFound):
        people.get_resident(999_999)


# --- communities -------------------------------------------------------------------------


def test_communities_have_issuer_accounts_and_streets_do_not(place):
    assert place.north.issuer.kind == Account.ISSUER
    assert place.north.issuer.code == "issuer:N1"
    assert Community.get_by_id(place.street.id).issuer_id is None
    assert Community.get_by_id(place.district.id).issuer_id is None
    assert [c.code for c in people.communities()] == ["E1", "N1", "S1"]
    assert people.get_community("N1").id == place.north.id
    with pytest.raises(errors.UnknownCommunity):
        people.get_community("NOPE")
    with pytest.raises(errors.InvalidInput):
        people.create_community("X1", "x", "x", level="planet")


def test_within_follows_the_tree(place):
    assert people.within(place.north, place.north)
    assert people.within(place.north, place.street)
    assert people.within(place.north, place.district)
    assert not people.within(place.north, place.south)
    assert not people.within(place.street, place.north)
    assert not people.within(place.east, place.street)


# --- staff and roles ---------------------------------------------------------------------


def test_admin_acts_anywhere(place):
    boss = f.admin()
    assert boss.community_id is None
    for where in (place.north, place.south, place.east, place.street, None):
        assert people.can_act(boss, where, Staff.COORDINATOR)
    resident = people.register_resident(place.east, "East resident", staff=boss)
    assert resident.community_id == place.east.id
    assert [c.code for c in people.visible_communities(boss)] == ["E1", "N1", "S1"]


def test_a_coordinator_acts_only_in_their_own_community(place):
    north = f.coordinator(place.north)
    assert people.can_act(north, place.north, Staff.COORDINATOR)
    assert not people.can_act(north, place.south, Staff.COORDINATOR)
    people.register_resident(place.north, "Mine", staff=north)
    with pytest.raises(errors.NotPermitted):
        people.register_resident(place.south, "Not mine", staff=north)
    with pytest.raises(errors.NotPermitted):
        f.activity(north, place.south)
    assert [c.code for c in people.visible_communities(north)] == ["N1"]
    assert [r.display_name for r in Resident.select()] == ["Mine"]


def test_a_street_coordinator_acts_in_the_communities_below(place):
    street = f.coordinator(place.street)
    people.register_resident(place.north, "North", staff=street)
    people.register_resident(place.south, "South", staff=street)
    with pytest.raises(errors.NotPermitted):
        people.register_resident(place.east, "East", staff=street)
    assert [c.code for c in people.visible_communities(street)] == ["N1", "S1"]


def test_a_coordinator_cannot_act_in_admin_only_matters(place):
    north = f.coordinator(place.north)
    with pytest.raises(errors.NotPermitted):
        people.authorize(north, None, Staff.ADMIN)
    with pytest.raises(errors.NotPermitted):
        rules.set_rule(north, "volunteering", 500, 1)


def test_a_clerk_cannot_create_confirm_or_register(place):
    clerk = f.clerk(place.north)
    boss = f.admin()
    with pytest.raises(errors.NotPermitted):
        people.register_resident(place.north, "Someone", staff=clerk)
    with pytest.raises(errors.NotPermitted):
        f.activity(clerk, place.north)
    resident = f.resident(place.north)
    activity = f.activity(boss, place.north)
    signup = activities.join(resident, activity)
    with pytest.raises(errors.NotPermitted):
        awards.confirm_participation(clerk, signup)
    with pytest.raises(errors.NotPermitted):
        awards.reject_participation(clerk, signup, "no")
    with pytest.raises(errors.NotPermitted):
        people.close_resident(clerk, resident)
    assert ledger.balance(resident.account_id) == 0
    assert Resident.select().count() == 1
    # A clerk may still look residents up in their own community.
    assert [r.id for r in people.search_residents(clerk, resident.display_name)] == [resident.id]
    assert [c.code for c in people.visible_communities(clerk)] == ["N1"]


def test_authenticate_accepts_the_right_password_only(place):
    made = f.coordinator(place.north, username="li.wei")
    assert "correct" not in made.password_hash
    assert people.authenticate("li.wei", f.PASSWORD).id == made.id
    assert people.authenticate("  li.wei ", f.PASSWORD).id == made.id
    for username, password in (("li.wei", "wrong password"), ("li.wei", ""), ("li.wei", None),
                               ("nobody", f.PASSWORD), ("", "")):
        with pytest.raises(errors.BadCredentials):
            people.authenticate(username, password)


def test_inactive_staff_are_refused_everywhere(place):
    boss = f.admin()
    Staff.update(active=False).where(Staff.id == boss.id).execute()
    boss = Staff.get_by_id(boss.id)
    with pytest.raises(errors.BadCredentials):
        people.authenticate(boss.username, f.PASSWORD)
    assert not people.can_act(boss, place.north, Staff.COORDINATOR)
    with pytest.raises(errors.NotPermitted):
        people.register_resident(place.north, "Someone", staff=boss)
    with pytest.raises(errors.NotPermitted):
        rules.set_rule(boss, "volunteering", 500, 1)


@pytest.mark.parametrize(
    "username, password, role, where",
    [
        ("x1", f.PASSWORD, "mayor", "north"),
        ("x2", f.PASSWORD, Staff.COORDINATOR, None),
        ("x3", f.PASSWORD, Staff.CLERK, None),
        ("", f.PASSWORD, Staff.ADMIN, None),
        ("y" * 41, f.PASSWORD, Staff.ADMIN, None),
        ("x4", "short", Staff.ADMIN, None),
        ("x5", "", Staff.ADMIN, None),
    ],
)
def test_create_staff_refuses_bad_details(place, username, password, role, where):
    with pytest.raises(errors.InvalidInput):
        people.create_staff(username, password, role, community=getattr(place, where) if where else None)
    assert Staff.select().count() == 0


def test_usernames_are_unique(place):
    f.admin()
    taken = Staff.get().username
    with pytest.raises(errors.InvalidInput, match="taken"):
        f.coordinator(place.north, username=taken)
    assert Staff.select().count() == 1


# --- point rules ---------------------------------------------------------------------------


def test_the_default_rules(place):
    current = {r.category: (r.version, r.points, r.confirmations_required) for r in rules.current_rules()}
    assert current == {"rescue": (1, 300, 2), "mediation": (1, 150, 1), "volunteering": (1, 100, 1)}
    assert rules.current_rule("rescue").name("en") == "Rescue"
    assert rules.current_rule("rescue").name("zh_Hans") == "救援"
    rules.install_default_rules()  # a second install changes nothing
    assert PointRule.select().count() == 3
    with pytest.raises(errors.UnknownCategory):
        rules.current_rule("juggling")


def test_set_rule_adds_a_version(place):
    boss = f.admin()
    v2 = rules.set_rule(boss, "Volunteering", 120, 1)
    v3 = rules.set_rule(boss, "volunteering", 130, 2)
    assert (v2.version, v2.points, v2.name_en, v2.created_by_id) == (2, 120, "Volunteering", boss.id)
    assert rules.current_rule("volunteering").id == v3.id
    assert [(r.version, r.points) for r in rules.rule_history("volunteering")] == [
        (3, 130), (2, 120), (1, 100)
    ]
    assert {r.category: r.version for r in rules.current_rules()}["volunteering"] == 3
    # Earlier versions are kept as they were.
    assert PointRule.get((PointRule.category == "volunteering") & (PointRule.version == 1)).points == 100


def test_a_new_category_needs_a_chinese_name_and_gets_its_key_made_up(place):
    boss = f.admin()
    with pytest.raises(errors.InvalidInput):
        rules.set_rule(boss, "cleanup", 50, 1)
    with pytest.raises(errors.InvalidInput):
        rules.set_rule(boss, None, 50, 1, name_en="Clean-up")
    rule = rules.set_rule(boss, "cleanup", 50, 1, name_zh="清洁", name_en="Clean-up")
    assert (rule.version, rule.name_en) == (1, "Clean-up")
    # Chinese only: the key comes from the pinyin, and English readers see the Chinese name.
    first = rules.set_rule(boss, None, 80, 1, name_zh="扶老助残")
    again = rules.set_rule(boss, "", 90, 1, name_zh="扶老助残")
    assert (first.category, first.version, first.name("en")) == ("fu_lao_zhu_can", 1, "扶老助残")
    assert (again.category, again.version) == ("fu_lao_zhu_can_2", 1)
    assert rules.set_rule(boss, None, 60, 1, name_zh="巡逻", name_en="Night patrol").category == "night_patrol"


@pytest.mark.parametrize(
    "category, points, confirmations, error",
    [
        ("volunteering", 0, 1, ledger.InvalidAmount),
        ("volunteering", -100, 1, ledger.InvalidAmount),
        ("volunteering", 1.5, 1, ledger.InvalidAmount),
        ("volunteering", 100, 3, errors.InvalidInput),
        ("volunteering", 100, 0, errors.InvalidInput),
        ("救援", 100, 1, errors.InvalidInput),
        ("two words", 100, 1, errors.InvalidInput),
    ],
)
def test_set_rule_refuses_bad_rules(place, category, points, confirmations, error):
    boss = f.admin()
    with pytest.raises(error):
        rules.set_rule(boss, category, points, confirmations, name_zh="x", name_en="x")
    assert PointRule.select().count() == 3


# --- audit -------------------------------------------------------------------------------


def test_staff_actions_are_audited_with_staff_action_and_community(place):
    north = f.coordinator(place.north)
    boss = f.admin()
    resident = people.register_resident(place.north, "A", staff=north)
    people.update_resident(north, resident, display_name="B", grid_label="Grid 3")
    people.close_resident(north, resident)
    rule = rules.set_rule(boss, "mediation", 200, 1)
    target = f"resident:{resident.id}"
    assert f.audit_actions(north) == [
        ("resident.register", north.id, place.north.id, target),
        ("resident.edit", north.id, place.north.id, target),
        ("resident.close", north.id, place.north.id, target),
    ]
    assert f.audit_actions(boss) == [("rule.set", boss.id, None, "rule:mediation")]
    edit = AuditEvent.get(AuditEvent.action == "resident.edit")
    assert json.loads(edit.detail) == ["display_name", "grid_label"]
    assert json.loads(AuditEvent.get(AuditEvent.action == "rule.set").detail) == {
        "version": rule.version, "points": 200
    }


def test_refused_actions_leave_no_audit_event(place):
    north = f.coordinator(place.north)
    with pytest.raises(errors.NotPermitted):
        people.register_resident(place.south, "A", staff=north)
    people.register_resident(place.north, "B", phone="138 0013 8000", staff=north)
    with pytest.raises(errors.DuplicateResident):
        people.register_resident(place.north, "C", phone="8613800138000", staff=north)
    assert [a for a, *_ in f.audit_actions()] == ["resident.register"]


def test_registering_without_staff_is_not_audited(place):
    f.resident(place.north)
    assert AuditEvent.select().count() == 0


# --- CSV import --------------------------------------------------------------------------

GOOD_AND_BAD = (
    "name,phone,community,language,grid,unit\n"  # line 1
    "王芳,138 0013 8000,N1,,Grid 1,Unit 2\n"  # 2: good
    "Bad Phone,12345,N1,,,\n"  # 3: bad phone
    "Lost,139 0000 0001,ZZ9,,,\n"  # 4: unknown community
    "Twin,+86 138-0013-8000,S1,,,\n"  # 5: duplicate of line 2
    "Extra,139 0000 0002,N1,en,,,surplus\n"  # 6: too many fields
    ",139 0000 0003,N1,,,\n"  # 7: empty name
    "John Smith,139 0000 0004,S1,en,,\n"  # 8: good
)


def _lines(report):
    return [line for line, _ in report.errors]


def test_import_creates_the_good_rows_and_reports_the_bad_ones_by_line(place):
    rows = people.read_resident_csv(GOOD_AND_BAD)
    report = people.import_residents(rows)
    assert report.created == 2
    assert _lines(report) == [3, 4, 5, 6, 7]
    messages = dict(report.errors)
    assert messages[3] == str(errors.InvalidPhone())
    assert messages[4] == str(errors.UnknownCommunity())
    assert messages[5] == str(errors.DuplicateResident())
    assert "more fields" in messages[6]
    assert "name" in messages[7]
    created = {r.display_name: r for r in Resident.select()}
    assert set(created) == {"王芳", "John Smith"}
    assert created["王芳"].phone == E164
    assert (created["王芳"].community_id, created["王芳"].grid_label, created["王芳"].unit_label) == (
        place.north.id, "Grid 1", "Unit 2"
    )
    assert (created["John Smith"].community_id, created["John Smith"].language) == (place.south.id, "en")
    # Every created resident has a ledger account of its own.
    assert Account.select().where(Account.kind == Account.RESIDENT).count() == 2


def test_a_dry_run_creates_nothing_but_reports_the_same(place):
    rows = people.read_resident_csv(GOOD_AND_BAD)
    accounts = Account.select().count()
    dry = people.import_residents(rows, dry_run=True)
    assert Resident.select().count() == 0
    assert Account.select().count() == accounts
    real = people.import_residents(rows)
    assert (dry.created, dry.errors) == (real.created, real.errors)
    assert Resident.select().count() == 2


def test_an_import_by_staff_is_checked_and_audited(place):
    north = f.coordinator(place.north)
    data = "name,phone,community\nA,139 0000 0001,N1\nB,139 0000 0002,S1\n"
    report = people.import_residents(people.read_resident_csv(data), staff=north)
    assert report.created == 1
    assert report.errors == [(3, str(errors.NotPermitted()))]
    assert [a for a, *_ in f.audit_actions(north)] == ["resident.register"]


def test_import_reports_progress_per_row(place):
    seen = []
    data = "name,phone,community\nA,139 0000 0001,N1\nB,bad,N1\n"
    people.import_residents(people.read_resident_csv(data), progress=seen.append)
    assert seen == [1, 1]


def test_the_csv_header_is_read_leniently(place):
    data = "\ufeff Name , PHONE,Community\nA,139 0000 0001,N1\n".encode()
    rows = people.read_resident_csv(data)
    assert rows == [(2, {"name": "A", "phone": "139 0000 0001", "community": "N1"})]
    assert people.import_residents(rows).created == 1


@pytest.mark.parametrize(
    "header", ["name,community\n", "phone,community\n", "name,phone\n", "", "nom,téléphone,communauté\n"]
)
def test_missing_header_columns_are_invalid_input(place, header):
    with pytest.raises(errors.InvalidInput):
        people.read_resident_csv(header + "A,139 0000 0001,N1\n")
