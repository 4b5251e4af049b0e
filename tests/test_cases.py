"""Every matter answered: a resident's report from received to closed, its time limits on a
simulated clock, duplicates, and the reporter's points on verified closure."""

import datetime
import io
import json
import re
from pathlib import Path

import community_factory as make
import pytest
from upgrades import app_before, upgrade

import ledger
from botapp.dialogue import SMS, Dialogue
from community import Case, CaseEvent, Notice, Photo, Staff, cases, contacts, places
from community.errors import (
    CaseWrongStep,
    CheckedBySomeoneElse,
    InvalidInput,
    KindNameNeeded,
    KindNameTaken,
    KindNotOffered,
    LastKind,
    NotAnEarlierCase,
    NotAPhoto,
    NotPermitted,
    TooManyKinds,
)
from community.notices import CASE_ACCEPTED, CASE_CLOSED, CASE_HANDLED, CASE_MERGED, CASE_OVERDUE

T0 = datetime.datetime(2026, 12, 1, 4, 16)  # 12:16 in Putian
PHONE = "+8613800138000"
HOUR = datetime.timedelta(hours=1)


@pytest.fixture
def grid(place):
    """A grid in the north community, its grid worker, and a resident who lives in it."""
    worker = make.staff(Staff.GRID_WORKER, places.add_place("N1-G1", "一网格", "grid", "N1"), username="wang-grid")
    resident = make.resident(place.north, "陈桂兰", phone_number=PHONE, grid_label="一网格", unit_label="3号楼")
    return worker, resident


def test_a_report_goes_to_the_grid_worker_and_each_step_tells_the_reporter(place, boss, grid):
    worker, resident = grid
    case = cases.report(resident, "facilities", "楼道灯坏了", now=T0)
    assert (case.state, case.assignee_id, case.place) == (Case.RECEIVED, worker.id, "一网格 3号楼")
    assert case.due_at == T0 + cases.BY_CODE["facilities"].accept
    assert make.kinds_of(resident) == []  # the reporter's own SMS reply carries the number
    case = cases.accept(worker, case, now=T0 + datetime.timedelta(minutes=5))
    case = cases.handled(worker, case, "换了新灯泡", now=T0 + datetime.timedelta(minutes=15))
    assert make.kinds_of(resident) == [CASE_ACCEPTED, CASE_HANDLED]
    with pytest.raises(CaseWrongStep):
        cases.accept(worker, case)
    case = cases.verify(case, True, resident=resident, now=T0 + datetime.timedelta(minutes=102))
    assert case.state == Case.CLOSED and case.points == cases.BY_CODE["facilities"].points
    assert ledger.balance(resident.account_id) == case.points
    assert make.kinds_of(resident)[-1] == CASE_HANDLED  # their own "solved" is answered by its reply alone
    assert [e.action for e in CaseEvent.select().where(CaseEvent.case == case.id).order_by(CaseEvent.id)] == [
        "report", "accept", "handled", "close"]
    assert ledger.verify().ok


def test_overdue_steps_turn_yellow_then_red_and_reach_the_coordinator(place, boss, grid):
    worker, resident = grid
    case = cases.report(resident, "hazard", "井盖松了", now=T0)
    limit = cases.BY_CODE["hazard"].accept
    assert cases.urgency(case, T0 + limit) == ""
    assert cases.urgency(case, T0 + limit + datetime.timedelta(minutes=1)) == "yellow"
    assert cases.urgency(case, T0 + 2 * limit + datetime.timedelta(minutes=1)) == "red"
    late = T0 + 2 * limit + datetime.timedelta(minutes=1)
    assert case.id in [c.id for c in cases.inbox(boss, late)["overdue"]]
    assert case.id not in [c.id for c in cases.inbox(boss, T0 + limit + datetime.timedelta(minutes=1))["overdue"]]
    assert case.id in [c.id for c in cases.inbox(worker, T0 + limit + datetime.timedelta(minutes=1))["overdue"]]
    case = cases.accept(worker, case, now=late)
    assert cases.urgency(case, late) == ""  # the next step has its own limit


def test_not_solved_reopens_and_only_the_reporter_or_staff_verify(place, boss, grid):
    worker, resident = grid
    case = cases.handled(worker, cases.report(resident, "environment", "垃圾没人清", now=T0), "已清理", now=T0)
    with pytest.raises(NotPermitted):
        cases.verify(case, True, resident=make.resident(place.north))
    case = cases.verify(case, False, resident=resident, now=T0)
    assert (case.state, case.reopened) == (Case.ACCEPTED, 1) and make.kinds_of(resident)[-1] == CASE_HANDLED
    assert ledger.balance(resident.account_id) == 0  # no points before the fix is verified
    case = cases.verify(cases.handled(worker, case, "又清了一次", now=T0), True, staff=boss, now=T0)
    assert case.state == Case.CLOSED and ledger.balance(resident.account_id) == case.points > 0
    assert make.kinds_of(resident)[-1] == CASE_CLOSED  # checked by staff: the reporter is told


def test_a_duplicate_follows_the_original_and_earns_nothing(place, boss, grid):
    worker, first = grid
    second = make.resident(place.north, "林伯", grid_label="一网格")
    original = cases.report(first, "hazard", "路灯不亮", now=T0)
    duplicate = cases.report(second, "hazard", "路口的灯坏了", now=T0)
    duplicate = cases.merge(worker, duplicate, str(original.id))
    assert duplicate.state == Case.MERGED and make.kinds_of(second) == [CASE_MERGED]
    original = cases.handled(worker, original, "修好了", now=T0)
    assert make.kinds_of(second)[-1] == CASE_HANDLED  # the second reporter follows the original
    cases.verify(original, True, resident=first, now=T0)
    assert ledger.balance(second.account_id) == 0
    assert ledger.balance(first.account_id) == cases.BY_CODE["hazard"].points


def test_report_points_stop_at_the_monthly_cap(place, boss, grid):
    worker, resident = grid
    earned = []
    for n in range(6):
        case = cases.handled(worker, cases.report(resident, "hazard", f"隐患{n}", now=T0), "已处理", now=T0)
        earned.append(cases.verify(case, True, resident=resident, now=T0).points)
    assert sum(earned) == cases.MONTHLY_CAP and earned[-1] == 0
    assert ledger.balance(resident.account_id) == cases.MONTHLY_CAP
    next_month = cases.handled(worker, cases.report(resident, "hazard", "新的隐患", now=T0), "已处理", now=T0)
    assert cases.verify(next_month, True, resident=resident, now=T0 + datetime.timedelta(days=31)).points > 0


def test_staff_outside_the_grid_cannot_touch_it(place, boss, grid):
    _worker, resident = grid
    other = make.staff(Staff.GRID_WORKER, places.add_place("N1-G2", "二网格", "grid", "N1"))
    case = cases.report(resident, "other", "有人乱停车", now=T0)
    for staff in (other, make.coordinator(place.south)):
        with pytest.raises(NotPermitted):
            cases.accept(staff, case)


def test_a_report_by_sms_in_chinese_with_digits_only_after_the_keyword(place, boss, grid, db):
    worker, resident = grid
    dialogue = Dialogue(str(Path(__file__).resolve().parent.parent / "translations"))

    def say(text, now=T0):
        return dialogue.handle(SMS, PHONE, text, now=now).full_text()

    assert "什么问题" in say("我要反映")
    asked = say("活动室的灯坏了，晚上很黑")  # holds 活动, still the report's text
    assert "1安全隐患" in asked and "3设施维修" in asked
    recorded = say("3")
    number = re.search(r"编号(\d+)", recorded).group(1)
    case = Case.get_by_id(int(number))
    assert (case.text, case.category, case.reporter_id) == ("活动室的灯坏了,晚上很黑", "facilities", resident.id)
    assert f"进度{number}" in recorded
    assert "等待受理" in say(f"进度 {number}")
    cases.handled(worker, cases.accept(worker, case, now=T0), "换了灯泡", now=T0)
    dialogue.ask_verification(SMS, PHONE, case.id)  # what the worker does once the question is sent
    thanked = say("1")
    assert "已办结" in thanked and "积分+0.2" in thanked
    assert Case.get_by_id(case.id).state == Case.CLOSED
    assert "已办结" in say(f"进度{number}")
    assert ledger.verify().ok


def test_a_report_may_hold_any_words_and_answers_need_the_whole_message(place, boss, grid, db):
    worker, resident = grid
    dialogue = Dialogue(str(Path(__file__).resolve().parent.parent / "translations"))

    def say(text):
        return dialogue.handle(SMS, PHONE, text, now=T0).full_text()

    say("反映")
    assert "是哪类问题" in say("物业不要再发传单了，楼下有人一直打电话很吵")  # not STOP, not 电话 for help
    say("5")
    case = Case.select().get()
    assert case.text.startswith("物业不要再发传单了") and not contacts.opted_out(resident, SMS)
    cases.handled(worker, cases.accept(worker, case, now=T0), "已处理", now=T0)
    say("什么时候修好了告诉我")  # a sentence with 修好了 in it closes nothing
    assert Case.get_by_id(case.id).state == Case.HANDLED
    assert "已办结" in say("修好了")
    assert "是哪类问题" in say("反应 3号楼电梯坏了")  # 反应 sounds like 反映, as older residents write it
    say("0")
    assert "什么问题" in say("我要反映一个问题") and "什么问题" in say("反映")  # asked what is wrong, the keyword again
    assert "是哪类问题" in say("反映 楼下的路灯不亮")
    say("3")
    assert Case.select().order_by(Case.id.desc()).get().text == "楼下的路灯不亮"
    say("反映一下：5号楼楼梯扶手断了")
    say("3")
    assert Case.select().order_by(Case.id.desc()).get().text == "5号楼楼梯扶手断了"


def test_staff_do_not_verify_their_own_fix_and_followers_are_not_asked(place, boss, grid):
    worker, first = grid
    second = make.resident(place.north, "林伯", grid_label="一网格")
    original = cases.report(first, "hazard", "路灯不亮", now=T0)
    cases.merge(worker, cases.report(second, "hazard", "路口的灯坏了", now=T0), str(original.id))
    with pytest.raises(NotAnEarlierCase):
        cases.merge(worker, original, str(original.id + 1))  # the first report stays the original
    original = cases.handled(worker, original, "修好了", now=T0)
    asked = {n.resident_id: json.loads(n.params).get("ask") for n in Notice.select().where(Notice.kind == CASE_HANDLED)}
    assert asked == {first.id: True, second.id: None}
    with pytest.raises(CheckedBySomeoneElse):
        cases.verify(original, True, staff=worker)
    closed = cases.verify(original, True, staff=boss, now=T0)
    assert closed.state == Case.CLOSED and closed.points > 0
    assert cases.case_number("99999999999999999999") is None and cases.case_number("²") is None


# --- each community's kinds, their first handler, escalation, photos ---------------------------


def kind_values(**changes):
    return {"name_zh": "电梯故障", "name_en": "Lift", "accept_hours": 1, "handle_hours": 8, "verify_hours": 24,
            "points": 30, **changes}


def test_a_community_sets_its_own_kinds_and_residents_pick_from_them(place, boss, grid, db):
    worker, resident = grid
    lift = cases.save_kind(boss, place.north, "", **kind_values())
    assert lift.code not in cases.BY_CODE and lift.position == 6
    # The first change copied the default kinds: the community keeps them, another community is untouched.
    offered = cases.categories(place.north.id)
    assert [k.name_zh for k in offered] == [c.name_zh for c in cases.CATEGORIES] + ["电梯故障"]
    assert cases.categories(place.south.id) == list(cases.CATEGORIES)
    cases.save_kind(boss, place.north, "dispute", **kind_values(name_zh="邻里纠纷", active=False))
    assert "邻里纠纷" not in [k.name_zh for k in cases.categories(place.north.id)]

    dialogue = Dialogue(str(Path(__file__).resolve().parent.parent / "translations"))
    asked = dialogue.handle(SMS, PHONE, "反映 电梯坏了，卡在三楼", now=T0).full_text()
    assert "4其他" in asked and "5电梯故障" in asked and "纠纷" not in asked
    dialogue.handle(SMS, PHONE, "5", now=T0)
    case = Case.select().order_by(Case.id.desc()).get()
    assert (case.category, case.due_at) == (lift.code, T0 + datetime.timedelta(hours=1))
    cases.handled(worker, cases.accept(worker, case, now=T0), "修好了", now=T0)
    assert cases.verify(case, True, resident=resident, now=T0).points == 30
    # A kind no longer offered still names the cases filed under it, and takes no new ones.
    cases.save_kind(boss, place.north, lift.code, **kind_values(active=False))
    assert cases.category(lift.code, place.north.id).name_zh == "电梯故障"
    with pytest.raises(KindNotOffered):
        cases.report(resident, lift.code, "又坏了", now=T0)
    with pytest.raises(KindNotOffered):  # another community's own kind
        cases.report(make.resident(place.south, "南边的"), lift.code, "电梯坏了", now=T0)
    assert [a[0] for a in make.audit_actions(boss)].count("case.kind") == 3


def test_kinds_stay_few_named_and_in_the_coordinators_hands(place, boss, grid):
    worker, _resident = grid
    with pytest.raises(NotPermitted):
        cases.save_kind(worker, place.north, "", **kind_values())
    with pytest.raises(NotPermitted):
        cases.save_kind(make.coordinator(place.south), place.north, "", **kind_values())
    with pytest.raises(KindNameTaken):
        cases.save_kind(boss, place.north, "", **kind_values(name_zh="其他"))
    with pytest.raises(KindNameNeeded):
        cases.save_kind(boss, place.north, "", **kind_values(name_zh="一个很长很长的名字啊"))
    with pytest.raises(InvalidInput):
        cases.save_kind(boss, place.north, "", **kind_values(handle_hours=0))
    for n in range(4):
        cases.save_kind(boss, place.north, "", **kind_values(name_zh=f"问题{n}"))
    with pytest.raises(TooManyKinds):  # nine offered: a single digit picks each
        cases.save_kind(boss, place.north, "", **kind_values(name_zh="第十种"))
    for kind in cases.categories(place.north.id)[1:]:
        cases.save_kind(boss, place.north, kind.code, **kind_values(name_zh=kind.name_zh, active=False))
    with pytest.raises(LastKind):
        cases.save_kind(boss, place.north, "hazard", **kind_values(name_zh="安全隐患", active=False))


def test_a_kind_with_its_own_handler_goes_to_them_first(place, boss, grid):
    worker, resident = grid
    mediator = make.staff(Staff.COORDINATOR, place.north, username="chen-mediation")
    cases.save_kind(boss, place.north, "dispute", **kind_values(name_zh="邻里纠纷", handler_id=mediator.id))
    assert cases.report(resident, "dispute", "楼上漏水", now=T0).assignee_id == mediator.id
    assert cases.report(resident, "hazard", "井盖松了", now=T0).assignee_id == worker.id
    with pytest.raises(NotPermitted):  # only someone who may take the community's cases
        cases.save_kind(boss, place.north, "dispute", **kind_values(name_zh="邻里纠纷",
                                                                     handler_id=make.clerk(place.north).id))
    Staff.update(active=False).where(Staff.id == mediator.id).execute()
    assert cases.report(resident, "dispute", "又漏水了", now=T0).assignee_id == worker.id


def test_a_step_gone_red_goes_up_to_the_coordinators_once(place, boss, grid):
    worker, resident = grid
    reachable = make.staff(Staff.COORDINATOR, place.north, username="lin-coord",
                           resident=make.resident(place.north, "林主任", phone_number="+8613900139000"))
    make.coordinator(place.south, resident=make.resident(place.south, "南主任"))
    case = cases.report(resident, "hazard", "井盖松了", now=T0)
    limit = cases.BY_CODE["hazard"].accept
    assert cases.escalate(T0 + limit + datetime.timedelta(minutes=1)) == 0  # yellow: not yet
    red = T0 + 2 * limit + datetime.timedelta(minutes=1)
    assert cases.escalate(red) == 1 and cases.escalate(red + HOUR) == 0
    told = Notice.select().where(Notice.kind == CASE_OVERDUE)
    assert [(n.resident_id, json.loads(n.params)["case"]) for n in told] == [(reachable.resident_id, case.id)]
    # The next step has its own limit, and goes up again once it is red too.
    case = cases.accept(worker, case, now=red)
    assert cases.escalate(red + HOUR) == 0
    assert cases.escalate(red + 3 * cases.BY_CODE["hazard"].handle) == 1 and told.count() == 2
    assert [e.action for e in CaseEvent.select().where(CaseEvent.case == case.id).order_by(CaseEvent.id)] == [
        "report", "escalate", "accept", "escalate"]


def test_a_photo_is_kept_small_and_without_where_it_was_taken(place, grid):
    from PIL import Image

    _worker, resident = grid
    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x8825] = {2: (25.0, 26.0, 27.0)}  # GPS
    Image.new("RGB", (4000, 3000), (10, 200, 30)).save(out, "JPEG", exif=exif)
    kept = Photo.get_by_id(cases.keep_photo(resident, out.getvalue()))
    with Image.open(io.BytesIO(bytes(kept.data))) as image:
        assert image.format == "JPEG" and max(image.size) == cases.PHOTO_SIDE and not image.getexif()
    assert Photo.get_by_id(cases.keep_photo(resident, make.photo_bytes(kind="PNG"))).case_id is None
    for junk in (b"", b"GIF89a not really", b"\xff\xd8\xff" + b"\0" * 100, b"<svg onload=alert(1)>"):
        with pytest.raises(NotAPhoto):
            cases.keep_photo(resident, junk)
    # A report takes its reporter's own photos that belong to no case yet.
    other = make.resident(place.north, "别人")
    theirs = cases.keep_photo(other, make.photo_bytes())
    case = cases.report(resident, "hazard", "井盖松了", photos=[kept.id, theirs], now=T0)
    assert [p.id for p in case.photos] == [kept.id] and Photo.get_by_id(theirs).case_id is None


def test_cases_from_before_each_community_had_its_kinds_carry_on(empty_db_url, tmp_path):
    app = app_before("0019", empty_db_url, tmp_path)
    with ledger.db.connection_context():
        place = make.build_place()
        resident = make.resident(place.north, "陈桂兰")
        old = Case.create(community=place.north.id, reporter=resident.id, category="facilities", text="楼道灯坏了",
                          due_at=T0, step_started_at=T0, created_at=T0)
    assert "0019_case_kinds_photos" in upgrade(app)
    with ledger.db.connection_context():
        boss = make.coordinator(place.north)
        assert cases.category(old.category, place.north.id).name_zh == "设施维修"
        cases.save_kind(boss, place.north, "facilities", **kind_values(name_zh="设施维修", points=40))
        case = cases.handled(boss, Case.get_by_id(old.id), "换了灯泡", now=T0)
        assert cases.verify(case, True, resident=resident, now=T0).points == 40
    assert app.test_cli_runner().invoke(args=["ledger", "verify"]).exit_code == 0
