"""Faults in real processes: workers killed with SIGKILL while they post awards and checkouts, and
the same request delivered ten times at once by ten processes.

Whatever was acknowledged is in the ledger exactly once, nothing is ever half-written, and a
duplicate has no second effect. The storm's workers live in tests/killing.py; the duplicates run
through tests/racing.py.
"""

import asyncio
import os
import random
import time
from collections import Counter
from pathlib import Path

import community_factory as make
import pytest
from fake_telegram import FakeTelegram
from killing import CHECKOUT, Cast, storm
from peewee import fn
from racing import race
from telegram import Update

import ledger
from botapp import sms
from botapp.dialogue import Dialogue
from botapp.models import Inbound
from botapp.telegram_bot import build_application
from catalog import codes
from catalog.checkout import RECEIPT, checkout, find_checkout
from catalog.errors import CodeUsed
from catalog.goods import create_goods, receive_stock
from catalog.models import CounterCode, Goods, Redemption, RedemptionLine, StockMovement
from community import activities, awards, notices
from community.models import Activity, AuditEvent, Confirmation, Notice, PointRule, Resident, Signup, Staff
from ledger import Account, Entry, Transfer

ROOT = Path(__file__).resolve().parent.parent
SECRET = "faults-secret"
TOKEN = "123456:TEST-linli-token"
PHONE = "+8613800138000"
TELEGRAM_USER = 70001
LONG = os.environ.get("LINLI_LONG_FAULTS") == "1"
WORKERS = 4


def dialogue():
    """The dialogue as the web process and the bot configure it."""
    return Dialogue(str(ROOT / "translations"), region="CN", code_secret=SECRET, bot_username="linli_bot")


def let_go(db):
    """Close this process's connections, so the children see everything and nothing waits on us."""
    for database in {db, ledger.db.obj}:
        if not database.is_closed():
            database.close()


# --- kill -9 storm -------------------------------------------------------------------------


def build_cast(place, boss, workers):
    """Staff, residents, activities and goods for the storm, made through the services."""
    deputy = make.coordinator(place.north)
    clerk = make.clerk(place.north)
    residents = [r.id for r in make.residents(place.north, 3 * workers)]
    rice = create_goods(boss, place.north, "大米", "Rice", 150)
    oil = create_goods(boss, place.north, "食用油", "Cooking oil", 100, limit_quantity=5, limit_period="week")
    eggs = create_goods(boss, place.north, "鸡蛋", "Eggs", 50)
    for goods, quantity in ((rice, 100_000), (oil, 100_000), (eggs, 60)):  # the eggs run out
        receive_stock(boss, goods, quantity)
    return Cast(
        boss=boss.id, deputy=deputy.id, clerk=clerk.id, residents=tuple(residents),
        shoppers=tuple(tuple(residents[w::workers]) for w in range(workers)),
        activities=tuple(
            tuple(make.begin(make.activity(boss, place.north, capacity=100)).id for _ in range(4))
            for _ in range(workers)
        ),
        goods=(rice.id, oil.id, eggs.id), secret=SECRET, seed=random.randrange(10**6),
    )


def amounts(transfer):
    """A transfer's legs as {account id: amount}."""
    return {e.account_id: e.amount for e in Entry.select().where(Entry.transfer == transfer)}


def assert_acknowledged_exactly_once(result):
    """Every acknowledged key is in the ledger once; every refused one is nowhere."""
    operations = result.operations()
    for key in result.keys("ack"):
        operation = operations[key]
        if operation["kind"] == CHECKOUT:
            transfers = list(Transfer.select().where(Transfer.idempotency_key == f"checkout:{key}"))
            assert len(transfers) == 1, f"acknowledged checkout {key}: {len(transfers)} transfers"
            assert find_checkout(key).transfer_id == transfers[0].id
            continue
        if operation["kind"] == "join":
            signups = Signup.select().where((Signup.activity == operation["activity"])
                                            & (Signup.resident == operation["resident"]))
        else:
            signups = Signup.select().where(Signup.activity.is_null() & (Signup.note == key))
        assert signups.count() == 1, f"acknowledged {key}: {signups.count()} sign-ups"
        signup = signups.get()
        assert signup.state == Signup.CONFIRMED, f"acknowledged {key}: sign-up {signup.state}"
        transfer = Transfer.get(Transfer.idempotency_key == f"award:signup:{signup.id}")
        assert signup.transfer_id == transfer.id
    for key in result.keys("refused"):
        assert not Transfer.select().where(Transfer.idempotency_key == f"checkout:{key}").exists(), key
        assert find_checkout(key) is None, key


def assert_awards_whole():
    """Each award is one confirmed sign-up with its confirmations, its transfer and its notice."""
    rules = {rule.id: rule for rule in PointRule.select()}
    need = {rule.category: rule.confirmations_required for rule in rules.values()}
    notes = Counter(note for (note,) in Signup.select(Signup.note).where(Signup.activity.is_null()).tuples())
    assert [note for note, count in notes.items() if count > 1] == [], "a retried report was recorded twice"
    confirmations = Counter(c.signup_id for c in Confirmation.select())
    confirmed = 0
    for signup in Signup.select():
        category = signup.category or signup.activity.category
        given = confirmations[signup.id]
        if signup.state == Signup.CONFIRMED:
            confirmed += 1
            assert given == need[category], f"sign-up {signup.id} confirmed with {given} confirmations"
            transfer = Transfer.get_by_id(signup.transfer_id)
            assert transfer.idempotency_key == f"award:signup:{signup.id}"
            points = rules[signup.rule_id].points
            issuer = (signup.activity.community if signup.activity_id else signup.resident.community).issuer_id
            assert amounts(transfer) == {signup.resident.account_id: points, issuer: -points}
        else:
            assert signup.state in Signup.PENDING and signup.transfer_id is None, f"sign-up {signup.id}"
            assert given < need[category], f"sign-up {signup.id}: {given} confirmations, yet no award"
    awarded = Transfer.select().where(Transfer.kind == Transfer.AWARD)
    assert awarded.count() == confirmed, "an award without its confirmed sign-up"
    assert Signup.select(fn.COUNT(fn.DISTINCT(Signup.transfer))).scalar() == confirmed
    assert Notice.select().where(Notice.kind == notices.CONFIRMED).count() == confirmed
    assert AuditEvent.select().where(AuditEvent.action == "signup.confirm").count() == sum(confirmations.values())
    for activity in Activity.select():
        seated = Signup.select().where((Signup.activity == activity.id) & Signup.state.in_(Signup.SEATED)).count()
        assert activity.taken == seated, f"activity {activity.code}: taken {activity.taken}, {seated} seated"


def assert_checkouts_whole():
    """Each redemption has its code, transfer, lines, stock movements, receipt and audit event."""
    redemptions = list(Redemption.select())
    moved = Counter()
    for movement in StockMovement.select().where(StockMovement.kind == StockMovement.REDEEMED):
        moved[(movement.reason, movement.goods_id)] += movement.quantity
    for redemption in redemptions:
        key = redemption.checkout_key
        transfer = Transfer.get_by_id(redemption.transfer_id)
        assert (transfer.kind, transfer.idempotency_key) == (Transfer.REDEEM, f"checkout:{key}")
        shop = Account.get(Account.code == f"shop:{redemption.community.code}")
        assert amounts(transfer) == {redemption.resident.account_id: -redemption.total, shop.id: redemption.total}
        lines = list(RedemptionLine.select().where(RedemptionLine.redemption == redemption.id))
        assert lines and sum(line.price * line.quantity for line in lines) == redemption.total
        for line in lines:
            assert moved.pop((f"checkout {key}", line.goods_id)) == -line.quantity, f"checkout {key}"
    assert moved == Counter(), f"stock taken without a redemption: {moved}"
    assert Transfer.select().where(Transfer.kind == Transfer.REDEEM).count() == len(redemptions)
    used = CounterCode.select().where(CounterCode.used_at.is_null(False)).count()
    assert used == len(redemptions), f"{used} codes used, {len(redemptions)} redemptions"
    assert Notice.select().where(Notice.kind == RECEIPT).count() == len(redemptions)
    assert AuditEvent.select().where(AuditEvent.action == "checkout").count() == len(redemptions)
    for goods in Goods.select():
        total = StockMovement.select(fn.SUM(StockMovement.quantity)).where(StockMovement.goods == goods.id).scalar()
        assert goods.stock == total and goods.stock >= 0, f"goods {goods.id}: stock {goods.stock}, moved {total}"


def assert_balances_add_up():
    """Cached balances are the sums of entries; a resident has what they earned less what they spent."""
    sums = dict(Entry.select(Entry.account, fn.SUM(Entry.amount)).group_by(Entry.account).tuples())
    for account in Account.select():
        assert account.balance == sums.get(account.id, 0), f"account {account.code}"
        if account.kind == Account.RESIDENT:
            assert account.balance >= 0, f"account {account.code} is negative"
    for resident in Resident.select():
        earned = sum(s.rule.points for s in Signup.select().where(
            (Signup.resident == resident.id) & (Signup.state == Signup.CONFIRMED)))
        spent = Redemption.select(fn.SUM(Redemption.total)).where(Redemption.resident == resident.id).scalar() or 0
        assert ledger.balance(resident.account_id) == earned - spent, f"resident {resident.id}"


@pytest.mark.parametrize("kills", [
    60,
    pytest.param(500, marks=[pytest.mark.slow,
                             pytest.mark.skipif(not LONG, reason="the long storm runs with LINLI_LONG_FAULTS=1")]),
])
def test_killed_workers_lose_nothing_acknowledged_and_leave_nothing_half_written(
    db, db_url, place, boss, runner, tmp_path, kills
):
    cast = build_cast(place, boss, WORKERS)
    let_go(db)
    result = storm(db_url, tmp_path / "storm", cast, workers=WORKERS, kills=kills, timeout=60 + 6 * kills)
    print(f"\nseed {cast.seed}: {result.summary()}")
    tally = result.tally()
    assert result.kills == kills and tally["start"] == WORKERS + kills
    assert tally["ack"] >= kills, result.summary()
    assert tally.get("retry", 0) > 0, "no worker was killed in the middle of an operation"

    report = ledger.verify()
    assert report.ok, report.problems
    verified = runner.invoke(args=["ledger", "verify"])
    assert verified.exit_code == 0, verified.output
    assert_acknowledged_exactly_once(result)
    assert not Transfer.select().where(Transfer.kind.not_in([Transfer.AWARD, Transfer.REDEEM])).exists()
    assert_awards_whole()
    assert_checkouts_whole()
    assert_balances_add_up()


# --- the same thing ten times at once ----------------------------------------------------------

TIMES = 10


def sms_delivery(message_id, sender, body):
    """What the SMS webhook does with one delivery of a message."""
    return sms.receive(dialogue(), message_id, sender, body)


def test_one_message_sid_delivered_ten_times_at_once_joins_once(db, db_url, place, boss):
    activity = make.activity(boss, place.north, capacity=5)
    resident = make.resident(place.north, phone_number=PHONE)
    let_go(db)
    outcomes = race(db_url, [(sms_delivery, ("SMstorm", PHONE, f"JOIN {activity.code}"))] * TIMES)
    first = Inbound.get(Inbound.key == "sms:SMstorm")
    assert activity.code in first.reply
    assert outcomes == [f"ok:{first.reply}"] * TIMES  # every delivery gets the first reply
    assert Inbound.select().count() == 1
    assert Signup.select().where(Signup.resident == resident.id).count() == 1
    assert Activity.get_by_id(activity.id).taken == 1
    assert make.kinds_of(resident) == []  # the reply was the one message: no notice besides


def telegram_delivery(base_url, update):
    """What the bot does with one delivery of an update: Linli's application, handlers and all."""

    async def handle():
        application = build_application(TOKEN, dialogue(), base_url=base_url)
        await application.initialize()
        try:
            await application.process_update(Update.de_json(update, application.bot))
        finally:
            await application.shutdown()

    asyncio.run(handle())
    return "handled"


def test_one_telegram_update_delivered_ten_times_at_once_joins_and_replies_once(db, db_url, place, boss):
    activity = make.activity(boss, place.north, capacity=5)
    resident = make.resident(place.north, telegram_id=TELEGRAM_USER)
    let_go(db)
    with FakeTelegram(TOKEN) as telegram:
        update = {"update_id": 777, "message": {
            "message_id": 1, "date": int(time.time()), "text": f"JOIN {activity.code}",
            "chat": FakeTelegram.private_chat(TELEGRAM_USER), "from": FakeTelegram.user(TELEGRAM_USER)}}
        outcomes = race(db_url, [(telegram_delivery, (telegram.base_url, update))] * TIMES)
        texts = telegram.texts(TELEGRAM_USER)
    assert outcomes == ["ok:handled"] * TIMES
    assert len(texts) == 1 and activity.code in texts[0], texts  # one reply, and no apology
    assert Inbound.select().where(Inbound.key.endswith(":777")).count() == 1
    assert Signup.select().where(Signup.resident == resident.id).count() == 1
    assert Activity.get_by_id(activity.id).taken == 1
    assert make.kinds_of(resident) == []  # the reply was the one message: no notice besides


def counter_submission(clerk_id, scanned, cart, key):
    """What the counter page does with one submission of the checkout form."""
    try:
        return checkout(Staff.get_by_id(clerk_id), codes.find_qr_code(scanned, SECRET), cart, checkout_key=key)
    except CodeUsed:
        done = find_checkout(key)  # the form was sent before: its receipt
        if done is None:
            raise
        return done


def test_one_checkout_key_sent_ten_times_at_once_checks_out_once(db, db_url, place, boss):
    soap = create_goods(boss, place.north, "肥皂", "Soap", 300)
    receive_stock(boss, soap, 20)
    clerk = make.clerk(place.north)
    resident = make.resident(place.north)
    for _ in range(5):
        awards.confirm_participation(boss, awards.report_deed(boss, resident, "volunteering", "值守"))
    scanned = codes.issue_qr_code(resident, SECRET)
    let_go(db)
    outcomes = race(db_url, [(counter_submission, (clerk.id, scanned, [(soap.id, 1)], "twice"))] * TIMES)
    redemption = find_checkout("twice")
    # Every submission gets the one receipt: none is told the code is used, none is charged twice.
    assert set(outcomes) == {f"ok:{redemption.id}"}, outcomes
    assert Redemption.select().count() == 1
    assert Transfer.select().where(Transfer.kind == Transfer.REDEEM).count() == 1
    assert ledger.balance(Resident.get_by_id(resident.id).account_id) == 200
    assert Goods.get_by_id(soap.id).stock == 19
    assert Notice.select().where(Notice.kind == RECEIPT).count() == 1
    assert ledger.verify().ok


def confirmation(staff_id, signup_id):
    """What the confirm button does."""
    return awards.confirm_participation(Staff.get_by_id(staff_id), signup_id)


@pytest.mark.parametrize("coordinators", [1, 2], ids=["one-coordinator", "two-coordinators"])
def test_ten_confirmations_at_once_award_once(db, db_url, place, boss, coordinators):
    staff = [boss, make.coordinator(place.north)][:coordinators]
    resident = make.resident(place.north)
    activity = make.activity(boss, place.north, category="volunteering")
    signup = activities.join(resident, activity)
    make.begin(activity)
    assert PointRule.get(PointRule.category == "volunteering").confirmations_required == 1
    let_go(db)
    outcomes = race(db_url, [(confirmation, (staff[i % coordinators].id, signup.id)) for i in range(TIMES)])
    assert outcomes == [f"ok:{signup.id}"] * TIMES  # each click shows the confirmed sign-up
    fresh = Signup.get_by_id(signup.id)
    assert fresh.state == Signup.CONFIRMED
    assert Confirmation.select().where(Confirmation.signup == signup.id).count() == 1
    award = Transfer.get(Transfer.kind == Transfer.AWARD)
    assert fresh.transfer_id == award.id and Transfer.select().count() == 1
    assert ledger.balance(Resident.get_by_id(resident.id).account_id) == 100
    assert make.kinds_of(resident) == [notices.CONFIRMED]
    assert ledger.verify().ok
