"""Checkout at the counter: use the resident's one-time code, check limits and stock, debit the
points to the shop account, record the redemption and stock movements, and queue a receipt —
all in one transaction, so any failure changes nothing. A voided checkout is put back the same way.
"""

import datetime
from dataclasses import dataclass

from peewee import IntegrityError

import ledger
from community import notices
from community.audit import record
from community.errors import InvalidInput
from community.models import Staff
from community.people import authorize, can_act, ensure_active
from ledger import Account, Transfer, db
from ledger.models import from_local, to_local, utcnow

from .codes import consume
from .errors import AlreadyVoided, CheckoutKeyUsed, CodeUsed, EmptyCart, GoodsNotFound, OverLimit, WrongCommunity
from .goods import move_stock
from .models import Goods, Redemption, RedemptionLine, StockMovement

MAX_LINE_QUANTITY = 99
RECEIPT, VOIDED = "redeemed", "redemption_voided"


@dataclass(frozen=True)
class Allowance:
    """How many of a limited item a resident may still take in the current period."""

    goods: Goods
    left: int


def shop_account(community):
    """The community supermarket's ledger account (created on first use)."""
    return ledger.open_account(f"shop:{community.code}", Account.SHOP, f"{community.name_en} supermarket")


def period_start(period, now, zone=datetime.UTC):
    """The start (naive UTC) of the limit period that contains `now` (naive UTC): the calendar
    month in the community's time zone `zone`, or the last 7 days."""
    if period == Goods.MONTH:
        first = to_local(now, zone).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        return from_local(first, zone)
    return now - datetime.timedelta(days=7)


def taken_in_period(resident, goods, now, zone=datetime.UTC):
    """How many of `goods` the resident has redeemed (not voided) in the current period."""
    return (
        RedemptionLine.select(RedemptionLine.quantity)
        .join(Redemption)
        .where(
            (Redemption.resident == resident.id) & (RedemptionLine.goods == goods.id)
            & (Redemption.status == Redemption.DONE)
            & (Redemption.created_at >= period_start(goods.limit_period, now, zone))
        )
        .scalars()
    )


def allowances(resident, now=None, zone=datetime.UTC):
    """What is left of each limited item for this resident (the counter shows it after a scan)."""
    now = now or utcnow()
    limited = Goods.select().where(
        (Goods.community == resident.community_id) & Goods.active & Goods.limit_quantity.is_null(False)
    )
    return [Allowance(g, max(0, g.limit_quantity - sum(taken_in_period(resident, g, now, zone)))) for g in limited]


def _cart(resident, cart):
    """Validate (goods id, quantity) pairs; merge repeats; return [(goods, quantity)]."""
    merged = {}
    for goods_id, quantity in cart:
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not 0 < quantity <= MAX_LINE_QUANTITY:
            raise InvalidInput(f"a quantity is a whole number from 1 to {MAX_LINE_QUANTITY}")
        merged[goods_id] = merged.get(goods_id, 0) + quantity
    if not merged:
        raise EmptyCart()
    lines = []
    for goods_id, quantity in sorted(merged.items()):
        goods = Goods.get_or_none((Goods.id == goods_id) & Goods.active)
        if goods is None or goods.community_id != resident.community_id:
            raise GoodsNotFound(goods_id=goods_id)
        lines.append((goods, quantity))
    return lines


def check_counter(clerk, resident):
    """Raise unless this clerk's counter serves this (active) resident."""
    ensure_active(resident)
    if not can_act(clerk, resident.community, Staff.CLERK, Staff.COORDINATOR):
        raise WrongCommunity()


def find_checkout(checkout_key):
    """The redemption already made under this checkout key, if any (a resubmitted form)."""
    return Redemption.get_or_none(Redemption.checkout_key == checkout_key)


def recent_checkouts(communities, *, day=None, clerk=None, zone=datetime.UTC, limit=200):
    """The latest checkouts in these communities (None: all), newest first: of one local
    calendar `day` (a date) and of one clerk where given."""
    query = Redemption.select()
    if communities is not None:
        query = query.where(Redemption.community.in_([c.id for c in communities]))
    if day is not None:
        start = from_local(datetime.datetime.combine(day, datetime.time()), zone)
        query = query.where((Redemption.created_at >= start)
                            & (Redemption.created_at < start + datetime.timedelta(days=1)))
    if clerk is not None:
        query = query.where(Redemption.clerk == clerk.id)
    return list(query.order_by(Redemption.id.desc()).limit(limit))


def checkouts_today(clerk, now=None, zone=datetime.UTC):
    """The checkouts this clerk made today (in the community's calendar), newest first."""
    today = to_local(now or utcnow(), zone).date()
    return recent_checkouts(None, day=today, clerk=clerk, zone=zone)


def checkout(clerk, code_row, cart, *, checkout_key, now=None, zone=datetime.UTC):
    """Pay for `cart` with the points of the resident whose one-time code was scanned.

    `code_row` comes from catalog.cards.find_counter_code. The same checkout key twice (a double
    click, a retry) returns the first redemption and changes nothing. Monthly limits follow the
    calendar of the time zone `zone`.
    """
    now = now or utcnow()
    resident = code_row.resident
    done = _done_under(checkout_key, resident)
    if done is not None:
        return done
    check_counter(clerk, resident)
    lines = _cart(resident, cart)
    try:
        return _checkout(clerk, code_row, resident, lines, checkout_key, now, zone)
    except (CodeUsed, IntegrityError, ledger.IdempotencyConflict) as exc:
        done = _done_under(checkout_key, resident)  # the same checkout sent twice at once: it won
        if done is not None:
            return done
        if isinstance(exc, CodeUsed):
            raise
        raise CheckoutKeyUsed() from None


def _done_under(checkout_key, resident):
    """The checkout already made with this key, or None; a key used for another resident's code
    is refused (a form filled for one resident cannot pay for another)."""
    done = find_checkout(checkout_key)
    if done is not None and done.resident_id != resident.id:
        raise CheckoutKeyUsed()
    return done


def _listed(lines, language):
    return ", ".join(f"{goods.name(language)}×{quantity}" for goods, quantity in lines)


def _checkout(clerk, code_row, resident, lines, checkout_key, now, zone):
    total = sum(goods.price * quantity for goods, quantity in lines)
    with db.atomic():
        consume(code_row, now)
        # The debit comes first: it locks the resident's account, so two checkouts of one
        # resident at two counters are counted against the limits one after the other.
        transfer = ledger.transfer(
            resident.account_id, shop_account(resident.community), total, kind=Transfer.REDEEM,
            memo=_listed(lines, "zh_Hans")[:500], actor=f"staff:{clerk.id}", idempotency_key=f"checkout:{checkout_key}",
        )
        for goods, quantity in lines:
            over = goods.limit_quantity is not None and (
                sum(taken_in_period(resident, goods, now, zone)) + quantity > goods.limit_quantity
            )
            if over:
                raise OverLimit(goods_id=goods.id)
            move_stock(goods.id, -quantity, StockMovement.REDEEMED, f"checkout {checkout_key}", clerk)
        redemption = Redemption.create(resident=resident, community=resident.community_id, clerk=clerk,
                                       transfer=transfer, total=total, checkout_key=checkout_key, created_at=now)
        for goods, quantity in lines:
            RedemptionLine.create(redemption=redemption, goods=goods, quantity=quantity, price=goods.price)
        notices.queue_notice(RECEIPT, resident, items=_listed(lines, resident.language), points=total,
                             balance=ledger.balance(resident.account_id))
        record(clerk, "checkout", f"redemption:{redemption.id}", {"total": total}, community=resident.community)
    return redemption


def void_checkout(staff, redemption, reason):
    """Undo a checkout (coordinators): points back by a ledger reversal, goods back on the shelf."""
    authorize(staff, redemption.community, Staff.COORDINATOR)
    reason = " ".join((reason or "").split())
    if not reason or len(reason) > 200:
        raise InvalidInput("a reason is required")
    with db.atomic():
        changed = (
            Redemption.update(status=Redemption.VOIDED, void_reason=reason)
            .where((Redemption.id == redemption.id) & (Redemption.status == Redemption.DONE))
            .execute()
        )
        if not changed:
            raise AlreadyVoided()
        ledger.reverse(redemption.transfer_id, reason, f"staff:{staff.id}")
        for line in redemption.lines:
            move_stock(line.goods_id, line.quantity, StockMovement.RETURNED, reason, staff)
        notices.queue_notice(VOIDED, redemption.resident_id, points=redemption.total, reason=reason,
                             balance=ledger.balance(redemption.resident.account_id))
        record(staff, "checkout.void", f"redemption:{redemption.id}", {"reason": reason},
               community=redemption.community)
    return Redemption.get_by_id(redemption.id)
