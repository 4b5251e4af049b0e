"""The supermarket counter: scan (or type phone + code), fill a cart, confirm. Clerks' page."""

import re
import uuid
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

import ledger
from botapp import outbox
from catalog import cards
from catalog.checkout import allowances, check_counter, checkout, find_checkout, recent_checkouts, void_checkout
from catalog.errors import CodeUsed, Unreachable
from catalog.goods import goods_for
from catalog.models import Redemption
from community import CommunityError, Staff
from community.people import can_act, mask_phone, visible_communities

from .auth import current_staff, roles_required
from .forms import ActionForm, ReasonForm
from .i18n import error_message
from .util import region

bp = Blueprint("counter", __name__, url_prefix="/counter")
COUNTER_ROLES = (Staff.CLERK, Staff.COORDINATOR)


CARRIED = ("code", "card", "phone", "digits")
DIGITS = re.compile(r"[0-9]{1,6}")


def _zone():
    return ZoneInfo(current_app.config["TIMEZONE"])


def _code_row(form):
    """The one-time code the form carries."""
    return cards.find_counter_code(current_app.config["SECRET_KEY"], scanned=form.get("code"), card=form.get("card"),
                                   phone=form.get("phone"), digits=form.get("digits"), region=region())


def _card_step(text, send=True):
    """A card was scanned: send the holder a six-digit code and ask for it."""
    config = current_app.config
    card = cards.find_card(text, config["SECRET_KEY"])
    resident = card.resident
    channel = outbox.choose_channel(resident, bool(config.get("TELEGRAM_BOT_TOKEN")),
                                    bool(config.get("TWILIO_ACCOUNT_SID")))
    if channel is None:
        raise Unreachable()
    sent = cards.send_card_code(current_staff(), card) if send else False
    return render_template("counter/card.html", form=ActionForm(), card=card.code, resident=resident,
                           phone=mask_phone(resident.phone), telegram=channel == outbox.TELEGRAM, sent=sent)


@bp.get("/")
@roles_required(*COUNTER_ROLES)
def index():
    """The counter: an autofocused field for the scanner, and phone + code by hand."""
    return render_template("counter/index.html", form=ActionForm())


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
        row = _code_row(form)
        check_counter(current_staff(), row.resident)
    except (CommunityError, ledger.LedgerError) as exc:
        flash(error_message(exc), "error")
        if form.get("card"):  # a mistyped code: ask again without sending another
            try:
                return _card_step(form["card"], send=False)
            except CommunityError:
                pass
        return redirect(url_for(".index"))
    resident = row.resident
    return render_template(
        "counter/cart.html", form=ActionForm(), resident=resident, phone=mask_phone(resident.phone),
        balance=ledger.balance(resident.account_id), allowances=allowances(resident, zone=_zone()),
        goods=goods_for(resident.community), carried={k: form[k] for k in CARRIED if form.get(k)},
        checkout_key=uuid.uuid4().hex,
    )


@bp.post("/checkout")
@roles_required(*COUNTER_ROLES)
def confirm():
    """Take the points and the goods in one transaction; any failure changes nothing."""
    if not ActionForm().validate_on_submit():
        return redirect(url_for(".index"))
    cart = []
    for key, value in request.form.items():
        if key.startswith("qty-") and DIGITS.fullmatch(key[4:]) and value.strip():
            if not DIGITS.fullmatch(value.strip()):
                flash(_("Quantities are whole numbers."), "error")
                return redirect(url_for(".index"))
            if int(value) > 0:
                cart.append((int(key[4:]), int(value)))
    key = request.form.get("checkout_key", "")[:80] or uuid.uuid4().hex
    try:
        row = _code_row(request.form)
        redemption = checkout(current_staff(), row, cart, checkout_key=key, zone=_zone())
    except CodeUsed:
        done = find_checkout(key)  # the same form sent twice: show the one checkout it made
        if done is not None:
            return redirect(url_for(".receipt", redemption_id=done.id))
        flash(error_message(CodeUsed()), "error")
        return redirect(url_for(".index"))
    except ledger.InsufficientPoints as exc:
        flash(_("Not enough points: the balance is %(balance)s.",
                balance=ledger.format_amount(exc.details.get("balance", 0))), "error")
        return redirect(url_for(".index"))
    except (CommunityError, ledger.LedgerError) as exc:
        flash(error_message(exc), "error")
        return redirect(url_for(".index"))
    return redirect(url_for(".receipt", redemption_id=redemption.id))


def _redemption_for_staff(redemption_id, *roles):
    redemption = Redemption.get_or_none(Redemption.id == redemption_id)
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
@roles_required(Staff.COORDINATOR)
def checkouts():
    """The latest checkouts in one's communities, to find one to void."""
    return render_template("counter/checkouts.html",
                           redemptions=recent_checkouts(visible_communities(current_staff())), mask=mask_phone)
