"""Destructive actions say what they do and ask for the decisions they need: closing an account
with points or open sign-ups, closing and reopening sign-ups."""

import community_factory as make
import pytest
from webforms import Browser

import ledger
from community import activities, awards
from community.errors import DecisionNeeded
from community.models import Activity, Resident, Signup


def balance(resident):
    return ledger.balance(Resident.get_by_id(resident.id).account_id)


@pytest.fixture
def busy(place, boss):
    """A resident with 1 point, a place in an activity to come and one waiting for confirmation."""
    resident = make.resident(place.north)
    awards.record_deed(boss, resident, "volunteering", "扫楼道")
    to_come = make.activity(boss, place.north, capacity=1)
    activities.join(resident, to_come)
    waiting = make.resident(place.north)
    activities.join(waiting, to_come)  # on the waitlist behind them
    held = make.activity(boss, place.north)
    activities.join(resident, held)
    make.begin(held)
    return resident, waiting, to_come, held


def test_closing_an_account_needs_a_decision_on_points_and_sign_ups(place, boss, busy):
    resident, waiting, to_come, held = busy
    for decisions in ({}, {"points": "return"}, {"cancel_signups": True}, {"points": "maybe", "cancel_signups": True}):
        with pytest.raises(DecisionNeeded):
            awards.close_account(boss, resident, **decisions)
    assert Resident.get_by_id(resident.id).status == Resident.ACTIVE and balance(resident) == 100
    closed = awards.close_account(boss, resident, points="return", cancel_signups=True)
    assert closed.status == Resident.CLOSED and balance(resident) == 0
    states = {s.activity_id: s.state for s in Signup.select().where(Signup.resident == resident.id)
              if s.activity_id}
    assert states == {to_come.id: Signup.CANCELLED, held.id: Signup.REJECTED}
    assert Signup.get(Signup.resident == waiting.id).state == Signup.SIGNED_UP  # the waitlist moved up
    assert ledger.verify().ok


def test_points_can_be_kept_on_a_closed_account(place, boss):
    resident = make.resident(place.north)
    awards.record_deed(boss, resident, "volunteering", "扫楼道")
    awards.close_account(boss, resident, points="keep")
    assert balance(resident) == 100 and Resident.get_by_id(resident.id).status == Resident.CLOSED


def test_the_close_page_states_the_consequences_and_takes_the_decisions(app, client):
    with app.app_context():
        place = make.build_place()
        boss = make.coordinator(place.north, username="coord")
        resident = make.resident(place.north, "林阿姨")
        awards.record_deed(boss, resident, "volunteering", "扫楼道")
        activity = make.activity(boss, place.north, title="义诊")
        activities.join(resident, activity)
    browser = Browser(client)
    browser.login("coord")
    browser.get(f"/residents/{resident.id}")
    page = browser.get(f"/residents/{resident.id}/close").get_data(as_text=True)
    assert "还有 1 积分" in page and "义诊" in page
    form = browser.find(f"/residents/{resident.id}/close")
    refused = browser.send(form, form.values())  # no decision (a browser would not even send it)
    assert "先决定" in refused.get_data(as_text=True)
    with app.app_context():
        assert Resident.get_by_id(resident.id).status == Resident.ACTIVE
    done = browser.send(form, form.values(points="return", signups="cancel"))
    assert "账户已注销" in done.get_data(as_text=True)
    with app.app_context():
        assert Resident.get_by_id(resident.id).status == Resident.CLOSED and balance(resident) == 0


def test_closed_sign_ups_are_opened_again(app, client):
    with app.app_context():
        place = make.build_place()
        boss = make.coordinator(place.north, username="coord")
        activity = make.activity(boss, place.north)
    browser = Browser(client)
    browser.login("coord")
    page = browser.get(f"/activities/{activity.id}").get_data(as_text=True)
    assert "已报名的居民不受影响" in page
    browser.submit(action=f"/activities/{activity.id}/close")
    assert Activity.get_by_id(activity.id).status == Activity.CLOSED
    browser.submit(action=f"/activities/{activity.id}/reopen")
    assert Activity.get_by_id(activity.id).status == Activity.OPEN and "报名已重新开放" in browser.html
