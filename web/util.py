"""Small helpers the page modules share: time zones and the communities a user may pick."""

from zoneinfo import ZoneInfo

from flask import current_app

from community.people import visible_communities
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


def region():
    """The default region for phone numbers written without a country code."""
    return current_app.config["DEFAULT_REGION"]
