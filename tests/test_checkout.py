"""Checkout at the counter: one transaction for code, limits, stock, points and receipt; voids;
and two counters racing for one code or the last item, in real processes."""

import datetime
from zoneinfo import ZoneInfo

import community_factory as make
import pytest
from racing import race

import ledger
from catalog import codes
from catalog.checkout import allowances, checkout, void_checkout
from catalog.errors import (
    AlreadyVoided,
    CodeUsed,
    EmptyCart,
    GoodsNotFound,
    OutOfStock,
    OverLimit,
    WrongCommunity,
)
from catalog.goods import create_goods, receive_stock
from catalog.models import CounterCode, Goods, Redemption, StockMovement
from community import Notice
from community.awards import confirm_participation, report_deed
from community.errors import NotPermitted
from community.models import Resident, Signup, Staff

SECRET = "counter-secret"


@pytest.fixture
def counter(place, boss):
    oil = create_goods(boss, place.north, "食用油", "Cooking oil", 100, limit_quantity=1, limit_period="month")
    soap = create_goods(boss, place.north, "肥皂", "Soap", 300)
    receive_stock(boss, oil, 5)
    receive_stock(boss, soap, 2)
    clerk = make.clerk(place.north)
    resident = make.resident(place.north)
    for _ in range(5):  # 5 points, earned through the real confirmation path
        confirm_participation(boss, report_deed(boss, resident, "volunteering", "值守"))
    return clerk, resident, oil, soap


def scan(resident):
    return codes.find_qr_code(codes.issue_qr_code(resident, SECRET), SECRET)


def balance(resident):
    return ledger.balance(Resident.get_by_id(resident.id).account_id)


def stock(goods):
    return Goods.get_by_id(goods.id).stock


def snapshot():
    return (Redemption.select().count(), StockMovement.select().count(), ledger.Transfer.select().count(),
            Notice.select().count())


def test_a_checkout_pays_in_points_takes_stock_and_sends_a_receipt(counter):
    clerk, resident, oil, soap = counter
    redemption = checkout(clerk, scan(resident), [(soap.id, 1), (oil.id, 1)], checkout_key="k1")
    assert redemption.total == 400
    assert balance(resident) == 100
    assert (stock(oil), stock(soap)) == (4, 1)
    receipt = Notice.select().where((Notice.resident == resident.id) & (Notice.kind == "redeemed")).get()
    assert "食用油×1" in receipt.params and '"balance": 100' in receipt.params
    assert ledger.verify().ok


def test_the_receipt_names_the_goods_in_the_residents_language(counter, place, boss):
    clerk, _, oil, soap = counter
    reader = make.resident(place.north, "Ann", language="en")
    confirm_participation(boss, report_deed(boss, reader, "rescue", "river"))
    confirm_participation(make.coordinator(place.north), Signup.get(Signup.resident == reader.id))
    checkout(clerk, scan(reader), [(soap.id, 1)], checkout_key="en")
    [(_, params)] = make.notices_of(reader, "redeemed")
    assert params["items"] == "Soap×1"
    assert ledger.Transfer.select().order_by(ledger.Transfer.id.desc()).get().memo == "肥皂×1"


def test_the_same_checkout_key_twice_changes_nothing(counter):
    clerk, resident, oil, soap = counter
    first = checkout(clerk, scan(resident), [(soap.id, 1)], checkout_key="double")
    before = snapshot()
    again = checkout(clerk, scan(resident), [(soap.id, 1)], checkout_key="double")
    assert again.id == first.id and snapshot() == before and balance(resident) == 200


@pytest.mark.parametrize("make_cart, error", [
    (lambda oil, soap: [], EmptyCart),
    (lambda oil, soap: [(999_999, 1)], GoodsNotFound),
    (lambda oil, soap: [(oil.id, 1), (soap.id, 3)], OutOfStock),
    (lambda oil, soap: [(oil.id, 2)], OverLimit),
])
def test_any_failure_changes_nothing(counter, make_cart, error):
    clerk, resident, oil, soap = counter
    Goods.update(price=1).execute()  # points are not what these carts run out of
    assert_nothing_changes(clerk, resident, make_cart(oil, soap), error)


def test_not_enough_points_changes_nothing(counter):
    clerk, resident, oil, soap = counter
    assert_nothing_changes(clerk, resident, [(soap.id, 2)], ledger.InsufficientPoints)  # 600 for 500


def assert_nothing_changes(clerk, resident, cart, error):
    row = scan(resident)
    before, cash = snapshot(), balance(resident)
    with pytest.raises(error):
        checkout(clerk, row, cart, checkout_key="bad")
    assert snapshot() == before and balance(resident) == cash
    assert CounterCode.get_by_id(row.id).used_at is None  # the code still works for a corrected cart
    assert ledger.verify().ok


def test_limits_count_per_period_and_a_void_gives_everything_back(counter, boss):
    clerk, resident, oil, soap = counter
    first = checkout(clerk, scan(resident), [(oil.id, 1)], checkout_key="oil-1")
    assert [a.left for a in allowances(resident)] == [0]
    with pytest.raises(OverLimit):
        checkout(clerk, scan(resident), [(oil.id, 1)], checkout_key="oil-2")
    with pytest.raises(NotPermitted):
        void_checkout(clerk, first, "clerks cannot void")
    void_checkout(boss, first, "拿错了")
    assert (balance(resident), stock(oil), [a.left for a in allowances(resident)]) == (500, 5, [1])
    with pytest.raises(AlreadyVoided):
        void_checkout(boss, Redemption.get_by_id(first.id), "again")
    assert Notice.select().where(Notice.kind == "redemption_voided").count() == 1
    assert ledger.verify().ok


def test_a_code_works_once_and_only_at_its_own_communitys_counter(counter, place):
    clerk, resident, oil, soap = counter
    row = scan(resident)
    with pytest.raises(WrongCommunity):
        checkout(make.clerk(place.south), row, [(soap.id, 1)], checkout_key="south")
    checkout(clerk, row, [(soap.id, 1)], checkout_key="north")
    with pytest.raises(CodeUsed):
        checkout(clerk, row, [(soap.id, 1)], checkout_key="north-again")
    digits = codes.issue_digit_code(resident)
    row = codes.find_digit_code(resident, digits)
    assert checkout(clerk, row, [(oil.id, 1)], checkout_key="by-phone").total == 100


# --- two counters at once, in real processes ------------------------------------------------


def counter_checkout(clerk_id, code_id, goods_id, key):
    """What one counter does: load the clerk and the scanned code, check out one item."""
    return checkout(Staff.get_by_id(clerk_id), CounterCode.get_by_id(code_id), [(goods_id, 1)], checkout_key=key)


def test_two_counters_scanning_one_code_at_once_check_out_once(db, db_url, counter):
    clerk, resident, oil, soap = counter
    other_clerk = Staff.get_by_id(make.clerk(Resident.get_by_id(resident.id).community).id)
    row = scan(resident)
    db.close()
    outcomes = race(db_url, [(counter_checkout, (clerk.id, row.id, soap.id, "c1")),
                             (counter_checkout, (other_clerk.id, row.id, soap.id, "c2"))])
    assert [o.startswith("ok:") for o in outcomes].count(True) == 1
    assert "CodeUsed" in outcomes
    assert Redemption.select().count() == 1 and stock(soap) == 1 and ledger.verify().ok


def test_two_residents_buying_the_last_item_at_once_one_gets_it(db, db_url, counter, place, boss):
    clerk, resident, oil, soap = counter
    second = make.resident(place.north)
    confirm_participation(boss, report_deed(boss, second, "volunteering", "值守"))
    last = create_goods(boss, place.north, "牙膏", "Toothpaste", 100)
    receive_stock(boss, last, 1)
    rows = [scan(resident), scan(second)]
    db.close()
    outcomes = race(db_url, [(counter_checkout, (clerk.id, rows[0].id, last.id, "a")),
                             (counter_checkout, (clerk.id, rows[1].id, last.id, "b"))])
    assert [o.startswith("ok:") for o in outcomes].count(True) == 1 and "OutOfStock" in outcomes
    assert stock(last) == 0 and ledger.verify().ok


def test_monthly_limits_follow_the_communitys_calendar(counter):
    clerk, resident, oil, soap = counter
    shanghai = ZoneInfo("Asia/Shanghai")

    def buy_oil(when, key):
        row = codes.find_qr_code(codes.issue_qr_code(resident, SECRET, now=when), SECRET, now=when)
        return checkout(clerk, row, [(oil.id, 1)], checkout_key=key, now=when, zone=shanghai)

    buy_oil(datetime.datetime(2026, 11, 30, 15, 0), "november")  # 23:00 on 30 November in Shanghai
    buy_oil(datetime.datetime(2026, 11, 30, 17, 0), "december")  # 01:00 on 1 December: a new month there
    with pytest.raises(OverLimit):
        buy_oil(datetime.datetime(2026, 12, 1, 3, 0), "december again")
    assert [a.left for a in allowances(resident, now=datetime.datetime(2026, 12, 1, 3, 0), zone=shanghai)] == [0]
    assert stock(oil) == 3
