"""The supermarket's goods: list with low stock marked, add and edit, receive and adjust stock."""

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

import ledger
from catalog.goods import adjust_stock, create_goods, edit_goods, get_goods, goods_for, movements_of, receive_stock
from community import Community, CommunityError, Staff
from community.people import can_act, visible_communities

from .auth import current_staff, roles_required
from .forms import GoodsForm, StockForm, choices
from .i18n import error_message
from .util import community_choices, once

bp = Blueprint("goods", __name__, url_prefix="/goods")
COORDINATOR = Staff.COORDINATOR
LOW_STOCK = 5


def _goods_for_staff(goods_id):
    goods = get_goods(goods_id)
    if not can_act(current_staff(), goods.community, COORDINATOR):
        abort(403)
    return goods


def _limit(form):
    """The limit as typed: a quantity without a period is refused by the service, not dropped."""
    return form.limit_quantity.data, form.limit_period.data or None


@bp.get("/")
@roles_required(COORDINATOR)
def index():
    """Every community's goods, low stock marked."""
    shelves = [(c, goods_for(c, active_only=False)) for c in visible_communities(current_staff())]
    return render_template("goods/index.html", shelves=shelves, low=LOW_STOCK, stock_form=StockForm())


@bp.route("/new", methods=["GET", "POST"])
@roles_required(COORDINATOR)
def new():
    """Put new goods on a shelf."""
    form = GoodsForm()
    form.community.choices = community_choices(str(get_locale()))
    if form.validate_on_submit():
        try:
            done = once("goods.create", lambda: create_goods(
                current_staff(), Community.get_by_id(form.community.data), form.name_zh.data,
                form.name_en.data, ledger.parse_amount(form.price.data), *_limit(form)))
        except (CommunityError, ledger.LedgerError) as exc:
            flash(error_message(exc), "error")
        else:
            if not done.repeated:
                flash(_("Saved."), "success")
            return redirect(url_for(".index"))
    return render_template("goods/form.html", form=form, goods=None)


@bp.route("/<int:goods_id>/edit", methods=["GET", "POST"])
@roles_required(COORDINATOR)
def edit(goods_id):
    """Change name, price, limit, or take the goods off sale."""
    goods = _goods_for_staff(goods_id)
    form = GoodsForm(obj=goods if request.method == "GET" else None)
    form.community.choices = choices([(goods.community_id, goods.community.name(str(get_locale())))])
    if request.method == "GET":
        form.community.data = goods.community_id
        form.price.data = ledger.format_amount(goods.price)
    if form.validate_on_submit():
        try:
            edit_goods(current_staff(), goods, name_zh=form.name_zh.data, name_en=form.name_en.data,
                       price=ledger.parse_amount(form.price.data), active=form.active.data,
                       limit_quantity=_limit(form)[0], limit_period=_limit(form)[1])
        except (CommunityError, ledger.LedgerError) as exc:
            flash(error_message(exc), "error")
        else:
            flash(_("Saved."), "success")
            return redirect(url_for(".index"))
    return render_template("goods/form.html", form=form, goods=goods)


@bp.get("/<int:goods_id>/movements")
@roles_required(COORDINATOR)
def movements(goods_id):
    """Every change to a goods item's stock: deliveries, corrections, checkouts, returns."""
    goods = _goods_for_staff(goods_id)
    return render_template("goods/movements.html", goods=goods, movements=movements_of(goods))


@bp.post("/<int:goods_id>/stock")
@roles_required(COORDINATOR)
def stock(goods_id):
    """Receive a delivery, or correct the stock with a reason."""
    goods = _goods_for_staff(goods_id)
    form = StockForm()
    if not form.validate_on_submit():
        flash(_("Give a whole quantity (and a reason for a correction)."), "error")
        return redirect(url_for(".index"))
    change = receive_stock if form.kind.data == "receive" else adjust_stock
    if not once("goods.stock", lambda: change(current_staff(), goods, form.quantity.data, form.reason.data or "")
                ).repeated:
        flash(_("Stock updated."), "success")
    return redirect(url_for(".index"))
