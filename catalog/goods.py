"""Goods and stock: the stock on hand changes only through recorded movements."""

from community.audit import record
from community.errors import InvalidInput
from community.models import Staff
from community.people import authorize
from ledger import check_amount, db

from .errors import GoodsNotFound, LimitNeedsPeriod, OutOfStock
from .models import Goods, StockMovement

MAX_STOCK_CHANGE = 100_000


def _name(text, what, optional=False):
    text = " ".join((text or "").split())
    if optional and not text:
        return ""
    if not text or len(text) > 60 or not text.isprintable():
        raise InvalidInput(f"the {what} is 1 to 60 printable characters")
    return text


def _limit(quantity, period):
    if quantity is None and period is None:
        return None, None
    if quantity is not None and period is None:
        raise LimitNeedsPeriod()
    if period not in Goods.PERIODS or isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise InvalidInput("a limit is a whole number per month or per week")
    return quantity, period


def create_goods(staff, community, name_zh, name_en, price, limit_quantity=None, limit_period=None):
    """Put new goods on a community's shelf (no stock yet: receive it)."""
    authorize(staff, community, Staff.COORDINATOR)
    check_amount(price)
    limit_quantity, limit_period = _limit(limit_quantity, limit_period)
    with db.atomic():
        goods = Goods.create(community=community, name_zh=_name(name_zh, "Chinese name"),
                             name_en=_name(name_en, "English name", optional=True), price=price,
                             limit_quantity=limit_quantity, limit_period=limit_period)
        record(staff, "goods.create", f"goods:{goods.id}", {"price": price}, community=community)
    return goods


def edit_goods(staff, goods, *, name_zh, name_en, price, active, limit_quantity=None, limit_period=None):
    """Change name, price, limit or whether the goods are on sale."""
    authorize(staff, goods.community, Staff.COORDINATOR)
    check_amount(price)
    limit_quantity, limit_period = _limit(limit_quantity, limit_period)
    with db.atomic():
        Goods.update(name_zh=_name(name_zh, "Chinese name"), name_en=_name(name_en, "English name", optional=True),
                     price=price, active=bool(active), limit_quantity=limit_quantity, limit_period=limit_period).where(
            Goods.id == goods.id).execute()
        record(staff, "goods.edit", f"goods:{goods.id}", {"price": price, "active": bool(active)},
               community=goods.community)
    return Goods.get_by_id(goods.id)


def get_goods(goods_id):
    """Return the goods, or raise GoodsNotFound."""
    goods = Goods.by_id(goods_id)
    if goods is None:
        raise GoodsNotFound()
    return goods


def goods_for(community, active_only=True):
    """A community's goods, by name."""
    query = Goods.select().where(Goods.community == community)
    if active_only:
        query = query.where(Goods.active)
    return list(query.order_by(Goods.name_zh, Goods.id))


def movements_of(goods, limit=200):
    """A goods item's stock movements, newest first."""
    return list(StockMovement.select().where(StockMovement.goods == goods.id)
                .order_by(StockMovement.id.desc()).limit(limit))


def move_stock(goods_id, quantity, kind, reason="", staff=None):
    """Record a stock movement and apply it; the stock never goes below zero (one statement)."""
    query = Goods.update(stock=Goods.stock + quantity).where(Goods.id == goods_id)
    if quantity < 0:
        query = query.where(Goods.stock + quantity >= 0)
    if query.execute() != 1:
        raise OutOfStock(goods_id=goods_id)
    return StockMovement.create(goods=goods_id, kind=kind, quantity=quantity, reason=reason, staff=staff)


def _quantity(quantity):
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 0 < abs(quantity) <= MAX_STOCK_CHANGE:
        raise InvalidInput(f"a quantity is a whole number from 1 to {MAX_STOCK_CHANGE}")
    return quantity


def receive_stock(staff, goods, quantity, reason=""):
    """Add delivered stock."""
    authorize(staff, goods.community, Staff.COORDINATOR)
    if _quantity(quantity) < 0:
        raise InvalidInput("received stock is a positive quantity")
    with db.atomic():
        movement = move_stock(goods.id, quantity, StockMovement.RECEIVED, reason[:200], staff)
        record(staff, "stock.receive", f"goods:{goods.id}", {"quantity": quantity}, community=goods.community)
    return movement


def adjust_stock(staff, goods, quantity, reason):
    """Correct the stock (broken, expired, counted) by a signed quantity, with a reason."""
    authorize(staff, goods.community, Staff.COORDINATOR)
    _quantity(quantity)
    reason = " ".join((reason or "").split())
    if not reason or len(reason) > 200:
        raise InvalidInput("a stock adjustment needs a reason")
    with db.atomic():
        movement = move_stock(goods.id, quantity, StockMovement.ADJUSTED, reason, staff)
        record(staff, "stock.adjust", f"goods:{goods.id}", {"quantity": quantity, "reason": reason},
               community=goods.community)
    return movement
