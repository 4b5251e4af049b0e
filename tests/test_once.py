"""One effect per form: every create form sent five times at once (a double click, a resubmitted
page, a retry) creates one thing and says so; a deed is reported and confirmed in one transaction;
a checkout form cannot pay for another resident's code."""

import threading
import uuid

import community_factory as make
import pytest
from racing import race
from webforms import Browser

import ledger
from catalog import codes
from catalog.checkout import checkout
from catalog.errors import CheckoutKeyUsed
from catalog.goods import create_goods, receive_stock
from catalog.models import Goods, MemberCard, Redemption, StockMovement
from community import Activity, Notice, PointRule, Resident, Signup, Staff
from community.awards import record_deed
from community.errors import FormExpired, NotPermitted, UnknownCategory
from community.models import FormSubmission
from community.submissions import submit_once

# --- the service -------------------------------------------------------------------------


def test_a_form_key_carries_out_its_action_once(place, boss):
    resident = make.resident(place.north)
    key = uuid.uuid4().hex
    first = submit_once(boss, key, "deed.record", lambda: record_deed(boss, resident, "volunteering", "扫楼道"))
    again = submit_once(boss, key, "deed.record", lambda: record_deed(boss, resident, "volunteering", "扫楼道"))
    assert not first.repeated and again.repeated and again.result == first.result == first.made.id
    assert Signup.select().count() == 1 and ledger.balance(Resident.get_by_id(resident.id).account_id) == 100


def test_a_failed_action_leaves_its_key_free_and_keys_belong_to_their_author(place, boss):
    resident = make.resident(place.north)
    key = uuid.uuid4().hex
    with pytest.raises(UnknownCategory):
        submit_once(boss, key, "deed.record", lambda: record_deed(boss, resident, "no such thing", "x"))
    assert FormSubmission.select().count() == 0 and Signup.select().count() == 0
    submit_once(boss, key, "deed.record", lambda: record_deed(boss, resident, "volunteering", "x"))
    with pytest.raises(NotPermitted):
        submit_once(make.coordinator(place.north), key, "deed.record", lambda: 1 / 0)
    for bad in ("", "x" * 32, None, key.upper()):
        with pytest.raises(FormExpired):
            submit_once(boss, bad, "deed.record", lambda: 1 / 0)


def test_a_rescue_reported_and_confirmed_in_one_call_waits_for_a_second_coordinator(place, boss):
    resident = make.resident(place.north)
    signup = record_deed(boss, resident, "rescue", "救起落水儿童")
    assert signup.state == Signup.SIGNED_UP and signup.confirmations.count() == 1


def record_once(url_key, resident_id, staff_id):
    """One process's submission of the same deed form."""
    return submit_once(Staff.get_by_id(staff_id), url_key, "deed.record", lambda: record_deed(
        Staff.get_by_id(staff_id), Resident.get_by_id(resident_id), "rescue", "救起落水儿童")).result


def test_five_processes_sending_one_deed_form_make_one_pending_deed(db_url, place, boss):
    resident = make.resident(place.north)
    key = uuid.uuid4().hex
    outcomes = race(db_url, [(record_once, (key, resident.id, boss.id))] * 5)
    assert len(set(outcomes)) == 1, outcomes
    assert Signup.select().count() == 1 and Signup.get().confirmations.count() == 1


# --- every create form through the pages, five times at once -------------------------------


@pytest.fixture
def desk(app):
    """An admin, a coordinator of the north community with goods and residents, an activity."""
    with app.app_context():
        place = make.build_place()
        make.staff(Staff.ADMIN, username="root")
        boss = make.coordinator(place.north, username="coord")
        make.resident(place.north, "林阿姨", phone_number="13800138000")
        make.resident(place.north, "王伯", phone_number="13800138001")
        soap = create_goods(boss, place.north, "肥皂", "Soap", 100)
        activity = make.activity(boss, place.north, capacity=5, starts_at=make.future(days=2))
    return place, soap, activity


def five_at_once(browser, form, data):
    """Send the same filled-in form five times at once from five connections of one browser."""
    client, target = browser.client, browser.target(form)
    cookie = client.get_cookie("session")
    statuses, barrier = [], threading.Barrier(5)

    def send():
        other = client.application.test_client()
        other.set_cookie("session", cookie.value, domain=cookie.domain)
        barrier.wait(timeout=30)
        statuses.append(other.post(target, data=data).status_code)

    threads = [threading.Thread(target=send) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert statuses == [302] * 5, statuses


def counts():
    return {
        "signups": Signup.select().count(), "transfers": ledger.Transfer.select().count(),
        "residents": Resident.select().count(), "activities": Activity.select().count(),
        "goods": Goods.select().count(), "movements": StockMovement.select().count(),
        "notices": Notice.select().count(), "cards": MemberCard.select().count(),
        "rules": PointRule.select().count(), "redemptions": Redemption.select().count(),
    }


def created(before, after):
    return {k: after[k] - before[k] for k in after if after[k] != before[k]}


CREATE_FORMS = {
    "deed": ("coord", "/awards/new", {}, dict(phone="13800138000", category="volunteering", note="扫楼道"),
             {"signups": 1, "transfers": 1, "notices": 1}),
    "resident": ("coord", "/residents/new", {}, dict(display_name="陈桂兰", phone="13900139000"),
                 {"residents": 1}),
    "activity": ("coord", "/activities/new", {},
                 dict(title="楼道清扫", category="volunteering", starts_at="2031-05-01T09:00",
                      ends_at="2031-05-01T11:00", capacity="10"), {"activities": 1}),
    "goods": ("coord", "/goods/new", {}, dict(name_zh="牙膏", name_en="Toothpaste", price="2"), {"goods": 1}),
    "stock": ("coord", "/goods/", {"has": "quantity"}, dict(quantity="12", reason="进货"), {"movements": 1}),
    "announcement": ("coord", "/announce", {"button": "send"}, dict(text="周六上午社区义诊"), {"notices": 2}),
    "join": ("coord", "/activities/{activity}", {"has": "phone"}, dict(phone="13800138001"),
             {"signups": 1, "notices": 1}),
    "card": ("coord", "/cards/residents/{resident}", {}, {}, {"cards": 1}),
    "cards": ("coord", "/cards/communities/{community}", {"has": "form_key"}, {}, {"cards": 2}),
    "rule": ("root", "/rules", {"has": "points"},
             dict(category="", points="0.5", name_zh="清洁"), {"rules": 1}),
}


@pytest.mark.parametrize("name", CREATE_FORMS)
def test_every_create_form_sent_five_times_at_once_has_one_effect(app, client, desk, name):
    place, soap, activity = desk
    username, url, which, filled, effect = CREATE_FORMS[name]
    browser = Browser(client)
    browser.login(username)
    with app.app_context():
        resident = Resident.get(Resident.display_name == "林阿姨")
        url = url.format(activity=activity.id, resident=resident.id, community=place.north.id)
        browser.get(url)
        if name == "announcement":  # the send button appears with the preview of the cost
            browser.submit(button="preview", **filled)
            filled = {}
        form = browser.find(**(which or {"has": "form_key"}))
        assert "form_key" in form.names()
        data = form.values(button=which.get("button"), **filled)
        before = counts()
        five_at_once(browser, form, data)
        assert created(before, counts()) == effect
        repeat = browser.send(form, data)  # and once more, later: the page says it was done before
        assert "已经记录过了" in repeat.get_data(as_text=True)
        assert created(before, counts()) == effect
        assert ledger.verify().ok


# --- the checkout form belongs to its code ---------------------------------------------------


def test_a_checkout_form_cannot_pay_with_another_residents_code(place, boss):
    clerk = make.clerk(place.north)
    one, two = make.resident(place.north), make.resident(place.north)
    for resident in (one, two):
        record_deed(boss, resident, "volunteering", "值守")
    soap = create_goods(boss, place.north, "肥皂", "Soap", 50)
    receive_stock(boss, soap, 5)

    def code_of(resident):
        return codes.find_qr_code(codes.issue_qr_code(resident, "s"), "s")

    checkout(clerk, code_of(one), [(soap.id, 1)], checkout_key="k1")
    with pytest.raises(CheckoutKeyUsed):
        checkout(clerk, code_of(two), [(soap.id, 1)], checkout_key="k1")
    assert Redemption.select().count() == 1 and ledger.balance(Resident.get_by_id(two.id).account_id) == 100
