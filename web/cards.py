"""Member cards: print a resident's card (A6) or a sheet of a community's cards (A4); reissue."""

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from markupsafe import Markup

from botapp.qr import qr_svg
from catalog.cards import (
    MAX_PIN_FAILURES,
    cards_for,
    issue_card,
    issue_missing_cards,
    live_card,
    missing_cards,
    set_pin,
)
from community import Community, Staff
from community.people import can_act, get_resident

from .auth import current_staff, roles_required
from .forms import ActionForm
from .util import once

bp = Blueprint("cards", __name__, url_prefix="/cards")
COORDINATOR = Staff.COORDINATOR


def _allowed(community):
    if not can_act(current_staff(), community, COORDINATOR):
        abort(403)
    return community


@bp.app_template_filter("qr_svg")
def qr_svg_filter(text):
    return Markup(qr_svg(text))  # noqa: S704 - qrcode writes only path data


@bp.get("/residents/<int:resident_id>")
@roles_required(COORDINATOR)
def card(resident_id):
    """A resident's card, ready to print on A6; or the button that makes one."""
    resident = get_resident(resident_id)
    _allowed(resident.community)
    return render_template("cards/card.html", resident=resident, card=live_card(resident), form=ActionForm(),
                           max_pin_failures=MAX_PIN_FAILURES)


@bp.post("/residents/<int:resident_id>")
@roles_required(COORDINATOR)
def issue(resident_id):
    """Make a card, or a new one in place of a lost card (the old card stops working)."""
    resident = get_resident(resident_id)
    _allowed(resident.community)
    if ActionForm().validate_on_submit():
        replaced = live_card(resident) is not None
        pin = request.form.get("pin", "").strip() or None
        if not once("card.issue", lambda: issue_card(current_staff(), resident, current_app.config["SECRET_KEY"],
                                                     pin=pin)).repeated:
            flash(_("A new card was made; the old one no longer works.") if replaced else _("Card made."), "success")
    return redirect(url_for(".card", resident_id=resident.id))


@bp.post("/residents/<int:resident_id>/pin")
@roles_required(COORDINATOR)
def pin(resident_id):
    """Set a new PIN on the resident's card (or remove it); this also unlocks a locked PIN."""
    resident = get_resident(resident_id)
    _allowed(resident.community)
    card = live_card(resident)
    if card is None:
        flash(_("This resident has no member card yet."), "error")
    elif ActionForm().validate_on_submit():
        new = request.form.get("pin", "").strip()
        set_pin(current_staff(), card, new or None)
        flash(_("PIN saved.") if new else _("PIN removed: the counter sends a code again."), "success")
    return redirect(url_for(".card", resident_id=resident.id))


def _community(community_id):
    return _allowed(Community.by_id(community_id) or abort(404))


@bp.get("/communities/<int:community_id>")
@roles_required(COORDINATOR)
def sheet(community_id):
    """Every current card of a community on A4 sheets, and how many residents still have none."""
    community = _community(community_id)
    return render_template("cards/sheet.html", community=community, cards=cards_for(community),
                           missing=missing_cards(community), form=ActionForm())


@bp.post("/communities/<int:community_id>")
@roles_required(COORDINATOR)
def issue_missing(community_id):
    """Make cards for every active resident of the community who has none."""
    community = _community(community_id)
    if ActionForm().validate_on_submit():
        done = once("card.issue_missing",
                    lambda: issue_missing_cards(current_staff(), community, current_app.config["SECRET_KEY"]))
        if not done.repeated:
            flash(_("%(n)d cards made.", n=done.result), "success")
    return redirect(url_for(".sheet", community_id=community.id))
