"""The supermarket's goods, stock movements and one-time counter codes."""

import datetime
import re
from pathlib import Path

import community_factory as make
import pytest

from botapp.dialogue import SMS, TELEGRAM, Dialogue
from botapp.segments import segments
from catalog import codes
from catalog.errors import (
    CodeExpired,
    CodeMalformed,
    CodeReplaced,
    CodeUnknown,
    CodeUsed,
    OutOfStock,
    TooManyWrongDigits,
    WrongDigits,
)
from catalog.goods import adjust_stock, create_goods, edit_goods, goods_for, receive_stock
from catalog.models import CounterCode, Goods, StockMovement
from community.errors import InvalidInput, NotPermitted, ResidentClosed
from community.people import close_resident
from ledger.models import utcnow

SECRET = "counter-secret"


@pytest.fixture
def shop(db):
    place = make.build_place()
    coordinator = make.coordinator(place.north)
    oil = create_goods(coordinator, place.north, "食用油", "Cooking oil", 1000, limit_quantity=1, limit_period="month")
    soap = create_goods(coordinator, place.north, "肥皂", "Soap", 150)
    receive_stock(coordinator, oil, 5)
    receive_stock(coordinator, soap, 20)
    return place, coordinator, oil, soap


def stock_equals_movements(goods):
    moved = sum(m.quantity for m in StockMovement.select().where(StockMovement.goods == goods.id))
    return Goods.get_by_id(goods.id).stock == moved


def test_stock_changes_only_through_movements_and_never_below_zero(shop):
    place, coordinator, oil, soap = shop
    adjust_stock(coordinator, soap, -3, "受潮")
    with pytest.raises(OutOfStock):
        adjust_stock(coordinator, oil, -6, "盘点")
    with pytest.raises(InvalidInput):
        adjust_stock(coordinator, oil, -1, "")
    with pytest.raises(InvalidInput):
        receive_stock(coordinator, oil, 0)
    assert Goods.get_by_id(soap.id).stock == 17 and Goods.get_by_id(oil.id).stock == 5
    assert stock_equals_movements(oil) and stock_equals_movements(soap)


def test_only_coordinators_of_the_community_manage_goods(shop):
    place, coordinator, oil, soap = shop
    with pytest.raises(NotPermitted):
        create_goods(make.clerk(place.north), place.north, "牙膏", "Toothpaste", 200)
    with pytest.raises(NotPermitted):
        receive_stock(make.coordinator(place.south), oil, 1)


def test_goods_are_validated_and_can_be_taken_off_sale(shop):
    place, coordinator, oil, soap = shop
    with pytest.raises(InvalidInput):
        create_goods(coordinator, place.north, "", "x", 100)
    with pytest.raises(InvalidInput):
        create_goods(coordinator, place.north, "x", "x", 100, limit_quantity=0, limit_period="month")
    edit_goods(coordinator, soap, name_zh="香皂", name_en="Soap", price=200, active=False)
    assert [g.name_en for g in goods_for(place.north)] == ["Cooking oil"]


def test_a_qr_code_is_short_signed_single_use_and_forgiving_of_how_it_is_typed(shop):
    place, _, _, _ = shop
    resident = make.resident(place.north)
    code = codes.issue_qr_code(resident, SECRET)
    assert len(code) == 10 and code.isascii() and code.isupper() and code.isalnum()
    assert resident.phone[-4:] not in code
    typed = " ".join(code.lower())  # Caps Lock off, spaces from a scanner
    full_width = "".join(chr(ord(ch) + 0xFEE0) for ch in code)  # a Chinese input method
    assert codes.find_qr_code(typed, SECRET).resident_id == resident.id
    row = codes.find_qr_code(full_width, SECRET)
    codes.consume(row)
    with pytest.raises(CodeUsed):
        codes.find_qr_code(code, SECRET)
    with pytest.raises(CodeUsed):
        codes.consume(row)


def test_a_typo_is_caught_before_any_lookup(shop):
    place, _, _, _ = shop
    # A fixed code: two of its characters swapped must not keep a valid signature by chance (two
    # signature characters: 1 in 1,024 for a random code, which made this test fail now and then).
    body = "ABCDEFGH"
    code = body + codes.signature(SECRET, body)
    codes._issue(make.resident(place.north), CounterCode.QR, code, utcnow())
    swapped = "ABDCEFGH" + code[8:]
    for bad in (swapped, code[:-1], code + "2", "", "1234567890", code.replace(code[0], "0")):
        with pytest.raises(CodeMalformed):
            codes.find_qr_code(bad, SECRET)
    with pytest.raises(CodeMalformed):
        codes.find_qr_code(code, "another secret")


def test_codes_expire_and_asking_again_replaces_the_old_one(shop):
    place, _, _, _ = shop
    resident = make.resident(place.north)
    old = codes.issue_qr_code(resident, SECRET)
    new = codes.issue_qr_code(resident, SECRET)
    with pytest.raises(CodeReplaced):
        codes.find_qr_code(old, SECRET)
    later = utcnow() + codes.LIFETIME + datetime.timedelta(seconds=1)
    with pytest.raises(CodeExpired):
        codes.find_qr_code(new, SECRET, now=later)
    unknown_body = "ABCDEFGH"
    forged = unknown_body + codes.signature(SECRET, unknown_body)
    with pytest.raises(CodeUnknown):
        codes.find_qr_code(forged, SECRET)


def test_six_digit_codes_are_per_resident_and_guessing_voids_them(shop):
    place, _, _, _ = shop
    resident, other = make.resident(place.north), make.resident(place.north)
    digits = codes.issue_digit_code(resident)
    assert len(digits) == 6 and digits.isdigit()
    with pytest.raises(CodeUnknown):
        codes.find_digit_code(other, digits)
    wrong = f"{(int(digits) + 1) % 10**6:06d}"
    for left in range(codes.MAX_FAILED_ATTEMPTS - 1, 0, -1):
        with pytest.raises(WrongDigits) as wrong_try:
            codes.find_digit_code(resident, wrong)
        assert wrong_try.value.details == {"left": left}
    with pytest.raises(TooManyWrongDigits):
        codes.find_digit_code(resident, wrong)
    with pytest.raises(TooManyWrongDigits):  # the right digits come too late: the code is void
        codes.find_digit_code(resident, digits)
    fresh = codes.issue_digit_code(resident)
    assert codes.find_digit_code(resident, f" {fresh} ").resident_id == resident.id


def test_a_code_asked_for_twice_says_replaced_and_costs_no_try(shop):
    place, _, _, _ = shop
    resident = make.resident(place.north)
    first, second = codes.issue_digit_code(resident), codes.issue_digit_code(resident)
    if first == second:
        second = codes.issue_digit_code(resident)
    with pytest.raises(CodeReplaced):
        codes.find_digit_code(resident, first)
    newest = CounterCode.select().where(CounterCode.resident == resident.id).order_by(CounterCode.id.desc()).first()
    assert newest.failed_attempts == 0
    assert codes.find_digit_code(resident, second).id == newest.id


def test_a_closed_resident_gets_no_code(shop):
    place, coordinator, _, _ = shop
    resident = make.resident(place.north)
    close_resident(coordinator, resident)
    with pytest.raises(ResidentClosed):
        codes.issue_digit_code(resident.__class__.get_by_id(resident.id))


def test_shop_and_code_on_both_channels(shop):
    place, _, oil, soap = shop
    resident = make.resident(place.north, phone_number="+8613800138000", language="en")
    resident.__class__.update(telegram_id=777).where(resident.__class__.id == resident.id).execute()
    dialogue = Dialogue(str(Path(__file__).resolve().parent.parent / "translations"), code_secret=SECRET)
    listing = dialogue.handle(SMS, resident.phone, "商品").full_text()
    assert "Cooking oil 10 points" in listing and "Soap 1.5 points" in listing
    reply = dialogue.handle(SMS, resident.phone, "兑换码")
    digits = re.search(r"\b\d{6}\b", reply.full_text()).group()
    kept = CounterCode.get((CounterCode.resident == resident.id) & (CounterCode.kind == "digits")).code
    assert kept == codes.stored("digits", digits) and digits not in kept  # only a keyed hash is kept
    assert reply.image is None and segments(reply.full_text()) <= 2
    assert dialogue.handle(SMS, resident.phone, "REDEEM").image is None  # SMS gets digits, not a picture
    qr = dialogue.handle(TELEGRAM, "777", "REDEEM")
    assert qr.image.startswith(b"\x89PNG")
    shown = re.search(r"\b[A-Z2-9]{10}\b", qr.full_text()).group()
    assert CounterCode.select().where(CounterCode.kind == "qr").get().code == codes.stored("qr", shown)
    assert codes.find_qr_code(shown, SECRET).resident_id == resident.id
