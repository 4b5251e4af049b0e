"""The supermarket counter: scan (or type phone + code), fill a cart, confirm. Clerks' page."""

import uuid

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

import ledger
from catalog import codes
from catalog.checkout import allowances, checkout, find_checkout
from catalog.goods import goods_for
from catalog.models import Redemption
from community import CommunityError, Staff
from community.people import can_act, mask_phone

from .auth import current_staff, roles_required
from .forms import ActionForm
from .i18n import error_message
from .util import region

bp = Blueprint("counter", __name__, url_prefix="/counter")
COUNTER_ROLES = (Staff.CLERK, Staff.COORDINATOR)


def _code_row(form):
    """The one-time code the form carries."""
    return codes.find_counter_code(current_app.config["SECRET_KEY"], scanned=form.get("code"),
                                   phone=form.get("phone"), digits=form.get("digits"), region=region())


@bp.get("/")
@roles_required(*COUNTER_ROLES)
def index():
    """The counter: an autofocused field for the scanner, and phone + code by hand."""
    return render_template("counter/index.html", form=ActionForm())


@bp.post("/scan")
@roles_required(*COUNTER_ROLES)
def scan():
    """Show who the code belongs to, their balance and limits, and the goods to pick from."""
    if not ActionForm().validate_on_submit():
        return redirect(url_for(".index"))
    try:
        row = _code_row(request.form)
    except (CommunityError, ledger.LedgerError) as exc:
        flash(error_message(exc), "error")
        return redirect(url_for(".index"))
    resident = row.resident
    return render_template(
        "counter/cart.html", form=ActionForm(), resident=resident, phone=mask_phone(resident.phone),
        balance=ledger.balance(resident.account_id), allowances=allowances(resident),
        goods=goods_for(resident.community), carried=request.form, checkout_key=uuid.uuid4().hex,
    )


@bp.post("/checkout")
@roles_required(*COUNTER_ROLES)
def confirm():
    """Take the points and the goods in one transaction; any failure changes nothing."""
    if not ActionForm().validate_on_submit():
        return redirect(url_for(".index"))
    cart = []
    for key, value in request.form.items():
        if key.startswith("qty-") and key[4:].isdigit() and value.strip():
            if not value.strip().isdigit():
                flash(_("Quantities are whole numbers."), "error")
                return redirect(url_for(".index"))
            if int(value) > 0:
                cart.append((int(key[4:]), int(value)))
    key = request.form.get("checkout_key", "")[:80]
    done = find_checkout(key) if key else None
    if done is not None:  # the same form sent twice: the checkout already happened once
        return redirect(url_for(".receipt", redemption_id=done.id))
    try:
        row = _code_row(request.form)
        redemption = checkout(current_staff(), row, cart, checkout_key=key or uuid.uuid4().hex)
    except ledger.InsufficientPoints as exc:
        flash(_("Not enough points: the balance is %(balance)s.",
                balance=ledger.format_amount(exc.details.get("balance", 0))), "error")
        return redirect(url_for(".index"))
    except (CommunityError, ledger.LedgerError) as exc:
        flash(error_message(exc), "error")
        return redirect(url_for(".index"))
    return redirect(url_for(".receipt", redemption_id=redemption.id))


@bp.get("/receipts/<int:redemption_id>")
@roles_required(*COUNTER_ROLES)
def receipt(redemption_id):
    """What was taken and the resident's new balance."""
    redemption = Redemption.get_or_none(Redemption.id == redemption_id)
    staff = current_staff()
    if redemption is None or not can_act(staff, redemption.community, *COUNTER_ROLES):
        return render_template("error.html", message=_("Page not found.")), 404
    return render_template("counter/receipt.html", redemption=redemption,
                           balance=ledger.balance(redemption.resident.account_id))
