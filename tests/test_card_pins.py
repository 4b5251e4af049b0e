"""Residents without a phone pay with a PIN on their member card: chosen at issue, hashed, locked
after a few wrong tries, set anew (and so unlocked) by a coordinator; through the service and the
counter's pages."""

import community_factory as make
import pytest
from webforms import Browser

import ledger
from catalog import cards
from catalog.checkout import checkout
from catalog.errors import PinLocked, PinMalformed, WrongPin
from catalog.goods import create_goods, receive_stock
from catalog.models import MemberCard, Redemption
from community.awards import record_deed
from community.errors import NotPermitted
from community.models import AuditEvent, Resident

SECRET = "pin-secret"


@pytest.fixture
def phoneless(place, boss):
    resident = make.people.register_resident(place.north, "王伯")  # no phone, no Telegram
    for _ in range(2):
        record_deed(boss, resident, "volunteering", "看车棚")
    return resident


def test_a_pin_card_pays_without_any_message(place, boss, phoneless):
    clerk = make.clerk(place.north)
    soap = create_goods(boss, place.north, "肥皂", "Soap", 100)
    receive_stock(boss, soap, 3)
    card = cards.issue_card(boss, phoneless, SECRET, pin="2468")
    assert "2468" not in card.pin_hash
    digits = cards.code_by_pin(clerk, card, "2468")
    checkout(clerk, cards.find_counter_code(SECRET, card=card.code, digits=digits), [(soap.id, 1)],
             checkout_key="pin-1")
    assert ledger.balance(Resident.get_by_id(phoneless.id).account_id) == 100
    assert make.notices_of(phoneless, cards.COUNTER_CODE) == []


def test_wrong_pins_count_down_lock_and_a_coordinator_unlocks(place, boss, phoneless):
    clerk = make.clerk(place.north)
    card = cards.issue_card(boss, phoneless, SECRET, pin="135790")
    for left in range(cards.MAX_PIN_FAILURES - 1, 0, -1):
        with pytest.raises(WrongPin) as wrong:
            cards.code_by_pin(clerk, card, "000000")
        assert wrong.value.details == {"left": left}
    with pytest.raises(PinLocked):
        cards.code_by_pin(clerk, card, "000000")
    with pytest.raises(PinLocked):  # the right PIN is too late now
        cards.code_by_pin(clerk, card, "135790")
    with pytest.raises(NotPermitted):
        cards.set_pin(clerk, card, "1111")
    card = cards.set_pin(boss, card, "1111")
    assert len(cards.code_by_pin(clerk, card, "1111")) == 6
    actions = [e.action for e in AuditEvent.select().order_by(AuditEvent.id)]
    assert actions.count("card.pin_wrong") == cards.MAX_PIN_FAILURES and "card.pin" in actions


@pytest.mark.parametrize("pin", ["123", "1234567", "12a4", "１２３４", "12 34"])
def test_a_pin_is_four_to_six_plain_digits(place, boss, phoneless, pin):
    with pytest.raises(PinMalformed):
        cards.issue_card(boss, phoneless, SECRET, pin=pin)
    assert MemberCard.select().count() == 0


# --- through the pages ---------------------------------------------------------------------


def test_a_coordinator_gives_a_card_a_pin_and_the_clerk_checks_out_with_it(app, client):
    with app.app_context():
        place = make.build_place()
        boss = make.coordinator(place.north, username="coord")
        make.clerk(place.north, username="till")
        resident = make.people.register_resident(place.north, "王伯")
        for _ in range(2):
            record_deed(boss, resident, "volunteering", "看车棚")
        soap = create_goods(boss, place.north, "肥皂", "Soap", 100)
        receive_stock(boss, soap, 3)
    browser = Browser(client)
    browser.login("coord")
    browser.get(f"/cards/residents/{resident.id}")
    browser.submit(action=f"/cards/residents/{resident.id}", pin="8642")
    with app.app_context():
        card = MemberCard.get(MemberCard.resident == resident.id)
    assert card.pin_hash and "有密码" in browser.html and "刷卡后请输入您的密码" in browser.html

    browser.login("till")
    browser.get("/counter/")
    page = browser.submit(has="code", code=card.code).get_data(as_text=True)
    assert "请居民输入密码" in page
    wrong = browser.submit(has="pin", pin="1111").get_data(as_text=True)
    assert "密码不对，还可以再试 4 次" in wrong
    browser.submit(has="pin", pin="8642")
    form = browser.find("/counter/checkout")
    receipt = browser.send(form, form.values(**{f"qty-{soap.id}": "1"}))
    assert "完成" in receipt.get_data(as_text=True) and Redemption.select().count() == 1
    with app.app_context():
        assert ledger.balance(Resident.get_by_id(resident.id).account_id) == 100
        assert make.notices_of(Resident.get_by_id(resident.id), cards.COUNTER_CODE) == []
