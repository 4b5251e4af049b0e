"""Every matter answered: a resident's report from received to closed, its time limits on a
simulated clock, duplicates, and the reporter's points on verified closure."""

import datetime
import json
import re
from pathlib import Path

import community_factory as make
import pytest

import ledger
from botapp.dialogue import SMS, Dialogue
from community import Case, CaseEvent, Notice, Staff, cases, contacts, places
from community.errors import CaseWrongStep, CheckedBySomeoneElse, NotAnEarlierCase, NotPermitted
from community.notices import CASE_ACCEPTED, CASE_CLOSED, CASE_HANDLED, CASE_MERGED

T0 = datetime.datetime(2026, 12, 1, 4, 16)  # 12:16 in Putian
PHONE = "+8613800138000"


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
