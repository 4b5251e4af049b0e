"""Small helpers the page modules share: time zones and dates, the communities a user may pick,
the residents a picker offers, and carrying out a create form once."""

import datetime
import uuid
from zoneinfo import ZoneInfo

from flask import current_app, flash, request
from flask_babel import gettext as _

from catalog.cards import find_card, is_card_code
from community import CommunityError, contacts
from community.errors import ResidentNotFound, SeveralResidents
from community.people import can_act, find_resident, search_residents, visible_communities
from community.submissions import KEY, submit_once
from ledger import models as times

from .auth import current_staff
from .forms import choices


def to_utc(local):
    """Turn a naive local time from a form into the naive UTC the database stores."""
    zone = ZoneInfo(current_app.config["TIMEZONE"])
    return times.from_local(local, zone)


def to_local(utc):
    """Turn a stored naive UTC time into a naive local time for a form."""
    zone = ZoneInfo(current_app.config["TIMEZONE"])
    return times.to_local(utc, zone)


def community_choices(language):
    """(id, name) pairs of the communities the current staff member works in."""
    return choices((c.id, f"{c.name(language)} ({c.code})") for c in visible_communities(current_staff()))


def parse_day(text):
    """A date typed as YYYY-MM-DD (a date field), or None."""
    try:
        return datetime.date.fromisoformat(text or "")
    except ValueError:
        return None


def region():
    """The default region for phone numbers written without a country code."""
    return current_app.config["DEFAULT_REGION"]


def ready_channels():
    """The channels notices can go out on with these settings (others go to the worker's log)."""
    config = current_app.config
    return [c for c, ready in ((contacts.TELEGRAM, config.get("TELEGRAM_BOT_TOKEN")),
                               (contacts.SMS, config.get("SMS_PROVIDER"))) if ready]


def new_form_key():
    """A create form's one-time key: the one it was sent with when it is shown again, else a new one."""
    sent = request.form.get("form_key", "")
    return sent if KEY.fullmatch(sent) else uuid.uuid4().hex


def once(action, create):
    """Carry out a create form once per form key; a repeat changes nothing and says so."""
    outcome = submit_once(current_staff(), request.form.get("form_key", ""), action, create)
    if outcome.repeated:
        flash(_("Already recorded: this form was sent before, and nothing was done twice."), "info")
    return outcome


def find_residents(text, limit=50):
    """The residents a picker offers for what staff typed: a name, a building or unit, part of a
    phone number, or a scanned member card."""
    staff = current_staff()
    if is_card_code(text or ""):
        try:
            resident = find_card(text, current_app.config["SECRET_KEY"]).resident
        except CommunityError:
            return []
        return [resident] if can_act(staff, resident.community, staff.role) else []
    return search_residents(staff, text, limit=limit, region=region())


def one_resident(text):
    """The one resident a picker field names: by full phone number, else the only match of
    find_residents; or the error that says none or several match."""
    resident = find_resident(phone=(text or "")[:32], region=region())
    if resident is not None:
        return resident
    found = find_residents(text, limit=6)
    if not found:
        raise ResidentNotFound()
    if len(found) > 1:
        raise SeveralResidents(names="、".join(
            f"{r.display_name}（{r.unit_label}）" if r.unit_label else r.display_name for r in found[:5]))
    return found[0]
