"""The supermarket counter: scan (or type phone + code), fill a cart, confirm. Clerks' page."""

import re
import uuid
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

import ledger
from catalog import cards
from catalog.checkout import (
    allowances,
    check_counter,
    checkout,
    checkouts_today,
    find_checkout,
    recent_checkouts,
    void_checkout,
)
from catalog.errors import (
    CardReplaced,
    CodeExpired,
    CodeMalformed,
    CodeReplaced,
    CodeUnknown,
    CodeUsed,
    Unreachable,
)
from catalog.goods import goods_for
from catalog.models import Redemption
from community import CommunityError, Resident, Staff, contacts
from community.people import can_act, mask_phone, visible_communities
from ledger.models import to_local, utcnow

from .auth import current_staff, roles_required
from .forms import ActionForm, ReasonForm
from .i18n import error_message
from .util import parse_day, ready_channels, region

bp = Blueprint("counter", __name__, url_prefix="/counter")
COUNTER_ROLES = (Staff.CLERK, Staff.COORDINATOR)


CARRIED = ("code", "card", "phone", "digits")
DIGITS = re.compile(r"[0-9]{1,6}")
# Refusals that concern the code rather than the cart: the clerk types or scans it again.
CODE_PROBLEMS = (CodeUnknown, CodeMalformed, CodeExpired, CodeReplaced, CodeUsed, CardReplaced)


def _zone():
    return ZoneInfo(current_app.config["TIMEZONE"])


def _code_row(form):
    """The one-time code the form carries."""
    return cards.find_counter_code(current_app.config["SECRET_KEY"], scanned=form.get("code"), card=form.get("card"),
                                   phone=form.get("phone"), digits=form.get("digits"), region=region(),
                                   clerk=current_staff())


def _card_step(text, send=True, error=None):
    """A card was scanned: send the holder a six-digit code and ask for it."""
    card = cards.find_card(text, current_app.config["SECRET_KEY"])
    resident = card.resident
    channel, sent = None, False
    if card.pin_hash is None:  # a card with a PIN is paid with the PIN: nothing is sent
        channel = contacts.reach(resident, contacts.SERVICE, ready_channels())
        if channel is None:
            raise Unreachable()
        sent = cards.send_card_code(current_staff(), card) if send else False
    return render_template("counter/card.html", form=ActionForm(), card=card.code, resident=resident,
                           phone=mask_phone(resident.phone), channel=channel, sent=sent,
                           pin=card.pin_hash is not None, error=error), 422 if error else 200


def _index(error=None, phone=""):
    """The counter's first page; after a wrong code by phone, with the number kept."""
    staff = current_staff()
    today = checkouts_today(staff, zone=_zone())
    return render_template("counter/index.html", form=ActionForm(), error=error, phone=phone,
                           today=len(today), last=today[0] if today else None), 422 if error else 200


@bp.get("/")
@roles_required(*COUNTER_ROLES)
def index():
    """The counter: an autofocused field for the scanner, and phone + code by hand."""
    return _index()


@bp.post("/scan")
@roles_required(*COUNTER_ROLES)
def scan():
    """Show who the code belongs to, their balance and limits, and the goods to pick from.

    A member card first sends its holder a one-time code, which comes back here with the card.
    """
    if not ActionForm().validate_on_submit():
        return redirect(url_for(".index"))
    form = request.form
    try:
        if cards.is_card_code(form.get("code", "")) and not form.get("digits"):
            return _card_step(form["code"])
        if form.get("card") and "pin" in form:  # a holder with no phone types their PIN
            card = cards.find_card(form["card"], current_app.config["SECRET_KEY"])
            form = {"card": card.code, "digits": cards.code_by_pin(current_staff(), card, form["pin"])}
        row = _code_row(form)
        check_counter(current_staff(), row.resident)
    except (CommunityError, ledger.LedgerError) as exc:
        if form.get("card"):  # a mistyped code: ask again without sending another
            try:
                return _card_step(form["card"], send=False, error=error_message(exc))
            except CommunityError:
                pass
        if form.get("phone"):
            return _index(error_message(exc), phone=form["phone"][:32])
        flash(error_message(exc), "error")
        return redirect(url_for(".index"))
    carried = {k: form[k] for k in CARRIED if form.get(k)}
    return _cart(row.resident, carried, checkout_key=uuid.uuid4().hex)


def _cart(resident, carried, *, checkout_key, quantities=None, error=None, bad=(), code_problem=False):
    """The cart: the resident, their balance, the goods with what was typed so far, the total."""
    quantities = quantities or {}
    goods = goods_for(resident.community)
    balance = ledger.balance(resident.account_id)
    total = sum(g.price * quantities.get(g.id, 0) for g in goods)
    page = render_template(
        "counter/cart.html", form=ActionForm(), resident=resident, phone=mask_phone(resident.phone),
        balance=balance, allowances=allowances(resident, zone=_zone()), goods=goods, carried=carried,
        checkout_key=checkout_key, quantities=quantities, total=total, error=error, bad=set(bad),
        code_problem=code_problem,
    )
    return page, 422 if error else 200


def _quantities(form):
    """The quantities typed on the cart, by goods id, and the ids of those that are not whole numbers."""
    quantities, bad = {}, []
    for key, value in form.items():
        if key.startswith("qty-") and DIGITS.fullmatch(key[4:]) and value.strip():
            if DIGITS.fullmatch(value.strip()):
                quantities[int(key[4:])] = int(value)
            else:
                bad.append(int(key[4:]))
    return quantities, bad


@bp.post("/checkout")
@roles_required(*COUNTER_ROLES)
def confirm():
    """Take the points and the goods in one transaction; any failure changes nothing and keeps the
    clerk on the cart with every quantity, the offending line marked."""
    if not ActionForm().validate_on_submit():
        return redirect(url_for(".index"))
    form = request.form
    resident = Resident.by_id(form.get("resident", type=int))
    if resident is None:  # not a cart this counter showed
        return redirect(url_for(".index"))
    check_counter(current_staff(), resident)
    key = form.get("checkout_key", "")[:80] or uuid.uuid4().hex
    quantities, bad = _quantities(form)
    carried = {k: form[k] for k in CARRIED if form.get(k)}

    def again(error, bad=(), code_problem=False):
        return _cart(resident, carried, checkout_key=key, quantities=quantities, error=error, bad=bad,
                     code_problem=code_problem)

    if bad:
        return again(_("Quantities are whole numbers."), bad)
    try:
        row = _code_row(form)
        if row.resident_id != resident.id:
            raise CodeUnknown()
        cart = [(goods_id, n) for goods_id, n in quantities.items() if n > 0]
        redemption = checkout(current_staff(), row, cart, checkout_key=key, zone=_zone())
    except CODE_PROBLEMS as exc:
        done = find_checkout(key)  # the same form sent twice: show the one checkout it made
        if isinstance(exc, CodeUsed) and done is not None and done.resident_id == resident.id:
            return redirect(url_for(".receipt", redemption_id=done.id))
        return again(error_message(exc), code_problem=True)
    except ledger.InsufficientPoints as exc:
        return again(_("Not enough points: the balance is %(balance)s.",
                       balance=ledger.format_amount(exc.details.get("balance", 0))))
    except (CommunityError, ledger.LedgerError) as exc:
        goods_id = getattr(exc, "details", {}).get("goods_id")
        return again(error_message(exc), [goods_id] if goods_id else ())
    return redirect(url_for(".receipt", redemption_id=redemption.id))


def _redemption_for_staff(redemption_id, *roles):
    redemption = Redemption.by_id(redemption_id)
    if redemption is None or not can_act(current_staff(), redemption.community, *roles):
        abort(404)
    return redemption


@bp.get("/receipts/<int:redemption_id>")
@roles_required(*COUNTER_ROLES)
def receipt(redemption_id):
    """What was taken and the resident's new balance; coordinators can void it from here."""
    redemption = _redemption_for_staff(redemption_id, *COUNTER_ROLES)
    return render_template("counter/receipt.html", redemption=redemption,
                           balance=ledger.balance(redemption.resident.account_id), form=ReasonForm(),
                           scan_form=ActionForm(),
                           may_void=can_act(current_staff(), redemption.community, Staff.COORDINATOR))


@bp.post("/receipts/<int:redemption_id>/void")
@roles_required(Staff.COORDINATOR)
def void(redemption_id):
    """Undo a checkout with a reason: points back, goods back on the shelf, the resident told."""
    redemption = _redemption_for_staff(redemption_id, Staff.COORDINATOR)
    form = ReasonForm()
    if form.validate_on_submit():
        void_checkout(current_staff(), redemption, form.reason.data)
        flash(_("Voided: the points and the goods are back."), "success")
    else:
        flash(_("Give a reason."), "error")
    return redirect(url_for(".receipt", redemption_id=redemption.id))


@bp.get("/checkouts")
@roles_required(*COUNTER_ROLES)
def checkouts():
    """Checkouts of one day (today unless another is picked): a clerk's own, or, for coordinators,
    everyone's in their communities."""
    staff = current_staff()
    zone = _zone()
    day = parse_day(request.args.get("day", "")) or to_local(utcnow(), zone).date()
    mine_only = staff.role == Staff.CLERK
    redemptions = recent_checkouts(visible_communities(staff), day=day, clerk=staff if mine_only else None,
                                   zone=zone)
    return render_template("counter/checkouts.html", redemptions=redemptions, mask=mask_phone, day=day,
                           mine_only=mine_only, total=sum(r.total for r in redemptions if r.status == Redemption.DONE))
