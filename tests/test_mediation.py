"""Mediation: appointed mediators, stepping aside, privacy, the 30-day limit, and the mediation
award posted once to each resident mediator from the closed mediation."""

import datetime

import community_factory as make
import pytest
from webforms import Browser, find_form

import ledger
from catalog.reports import what_for
from community import Mediation, Staff, mediation, places
from community.errors import (
    FollowUpAfterOutcome,
    LastMediator,
    MediationClosed,
    MediatorIsAParty,
    NotPermitted,
    SelfConfirmation,
    TermsNeeded,
)
from community.rules import current_rule

T0 = datetime.datetime(2026, 12, 1, 2, 0)


@pytest.fixture
def room(place, boss):
    """Two resident mediators and a staff one in the north community."""
    lin, wu = make.resident(place.north, "林调解"), make.resident(place.north, "吴调解")
    staff_mediator = make.coordinator(place.north, username="mediating-coord")
    return [mediation.appoint(boss, place.north, resident=lin), mediation.appoint(boss, place.north, resident=wu),
            mediation.appoint(boss, place.north, staff_member=staff_mediator)]


def test_an_agreement_awards_each_resident_mediator_once_and_staff_nothing(place, boss, room):
    m = mediation.open_mediation(boss, place.north, "楼上漏水到楼下", ["张三", "李四"], [r.id for r in room], now=T0)
    assert m.due_at == T0 + mediation.LIMIT and not mediation.late(m, T0 + datetime.timedelta(days=30))
    assert mediation.late(m, T0 + datetime.timedelta(days=31))
    with pytest.raises(TermsNeeded):
        mediation.close(boss, m, Mediation.WRITTEN)
    closed = mediation.close(boss, m, Mediation.WRITTEN, terms="张三修好水管，赔李四300元",
                             carry_out_by=T0 + datetime.timedelta(days=7))
    points = current_rule("mediation").points
    assert [ledger.balance(r.resident.account_id) for r in room[:2]] == [points, points] == [150, 150]
    assert closed.state == Mediation.CLOSED
    with pytest.raises(MediationClosed):
        mediation.close(boss, m, Mediation.WRITTEN, terms="again")
    assert [ledger.balance(r.resident.account_id) for r in room[:2]] == [150, 150]
    assert ledger.verify().ok


def test_no_agreement_earns_nothing_and_a_related_mediator_steps_aside(place, boss, room):
    m = mediation.open_mediation(boss, place.north, "噪音", ["王五", "赵六"], [room[0].id, room[1].id])
    seats = list(m.seats)
    mediation.step_aside(boss, m, seats[0], "是王五的表哥")
    with pytest.raises(LastMediator):
        mediation.step_aside(boss, m, seats[1], "也认识")
    mediation.close(boss, m, Mediation.ORAL, terms="晚上十点后不装修")
    assert ledger.balance(room[0].resident.account_id) == 0  # stepped aside
    assert ledger.balance(room[1].resident.account_id) == 150
    other = mediation.open_mediation(boss, place.north, "停车", ["钱七", "孙八"], [room[1].id])
    mediation.close(boss, other, Mediation.REFERRED)
    assert ledger.balance(room[1].resident.account_id) == 150


def test_a_mediator_who_is_a_party_is_refused(place, boss, room):
    with pytest.raises(MediatorIsAParty):
        mediation.open_mediation(boss, place.north, "借钱不还", [room[0].resident, "周九"], [room[0].id])


def test_a_private_mediation_is_seen_by_coordinators_and_its_mediators_only(place, boss, room):
    grid = make.staff(Staff.GRID_WORKER, places.add_place("N1-G1", "一网格", "grid", "N1"))
    m = mediation.open_mediation(boss, place.north, "家事", ["甲", "乙"], [room[2].id], private=True)
    assert mediation.may_see(boss, m) and mediation.may_see(room[2].staff, m)
    assert not mediation.may_see(grid, m) and not mediation.may_see(make.coordinator(place.south), m)
    with pytest.raises(NotPermitted):
        mediation.follow_up(grid, m, "看过了")


def test_a_walk_in_dispute_from_opening_to_the_award_through_the_pages(app, client):
    with app.app_context():
        place = make.build_place()
        make.coordinator(place.north, username="north-coord")
        lin = make.resident(place.north, "林调解", phone_number="+8613800138111")
    browser = Browser(client)
    browser.login("north-coord")
    browser.get("/mediations/mediators")
    browser.submit(has="phone", phone="13800138111", community=str(place.north.id))
    browser.get("/mediations/new")
    form = find_form(browser.html, has="summary")
    [mediator_id] = [f.value for f in form.fields if f.name == "mediators"]  # the one appointed, as a checkbox
    values = form.values(summary="楼上漏水到楼下", parties="张三\n李四", source="walk_in",
                         community=str(place.north.id), mediators=mediator_id)
    target = browser.target(form)
    opened = browser.send(form, values)
    assert "调解 1 号" in opened.get_data(as_text=True)
    again = client.post(target, data=values, follow_redirects=True)  # submitted twice: one mediation
    assert again.status_code == 200 and "调解 1 号" in again.get_data(as_text=True)
    page = browser.submit(has="terms", outcome="written", terms="张三修好水管", carry_out_by="2026-12-08")
    assert "已记积分" in page.get_data(as_text=True)
    with app.app_context():
        assert Mediation.select().count() == 1
        assert ledger.balance(lin.account_id) == 150
        assert ledger.verify().ok
    report = browser.get("/reports/").get_data(as_text=True)
    assert "调解：开始 1 件，结束 1 件，其中达成协议 1 件" in report
    passbook = browser.get(f"/residents/{lin.id}").get_data(as_text=True)
    assert "调解纠纷 楼上漏水到楼下" in passbook and "mediation v" not in passbook


def test_no_one_closes_their_own_mediation_and_stepping_aside_ends_access(place, boss, room):
    own = make.resident(place.north, "陈主任本人")
    coordinator = make.coordinator(place.north, resident=own)
    sitting = mediation.appoint(boss, place.north, resident=own)
    grid = make.staff(Staff.GRID_WORKER, places.add_place("N1-G1", "一网格", "grid", "N1"))
    grid_mediator = mediation.appoint(boss, place.north, staff_member=grid)
    m = mediation.open_mediation(boss, place.north, "家事", ["甲", "乙"], [sitting.id, grid_mediator.id], private=True)
    with pytest.raises(SelfConfirmation):
        mediation.close(coordinator, m, Mediation.ORAL, terms="各让一步")
    assert mediation.may_see(grid, m)
    seat = [s for s in m.seats if s.mediator_id == grid_mediator.id][0]
    mediation.step_aside(boss, m, seat, "是甲的邻居")
    assert not mediation.may_see(grid, m)  # declared a tie to a party: no longer sees a private one
    with pytest.raises(FollowUpAfterOutcome):
        mediation.follow_up(boss, m, "还没结束")
    mediation.close(boss, m, Mediation.ORAL, terms="各让一步")
    mediation.follow_up(boss, m, "双方都做到了")
    with pytest.raises(FollowUpAfterOutcome):
        mediation.follow_up(boss, m, "又去了一次")
    line = ledger.history(own.account_id)[0]
    assert what_for(line, "zh_Hans", "退回") == f"调解纠纷 #{m.id}"  # a private dispute is not named
