"""The notices outbox: rows written with the change they announce, sent later by the worker."""

import datetime
import json

from peewee import IntegrityError

from ledger import db
from ledger.models import utcnow

from .models import Activity, Notice, Signup

# Kinds of notice and the parameters each carries (rendered by the channels).
SIGNED_UP, WAITLISTED, PROMOTED = "signed_up", "waitlisted", "promoted"
CONFIRMED, REJECTED, REVERSED = "confirmed", "rejected", "reversed"
ACTIVITY_CANCELLED, REMINDER, CANCELLED = "activity_cancelled", "reminder", "cancelled"


def queue_notice(kind, resident, dedupe_key=None, **params):
    """Add a notice for `resident` and return it.

    With a dedupe key at most one such notice ever exists: a second call returns None.
    """
    resident_id = getattr(resident, "id", resident)
    if dedupe_key is None:
        return Notice.create(kind=kind, resident=resident_id, params=json.dumps(params, ensure_ascii=False))
    try:
        with db.atomic():
            return Notice.create(
                kind=kind, resident=resident_id, dedupe_key=dedupe_key,
                params=json.dumps(params, ensure_ascii=False),
            )
    except IntegrityError:
        return None


def notice_params(notice):
    """Return a notice's parameters as a dict."""
    return json.loads(notice.params)


def queue_reminders(now=None):
    """Queue one reminder per seated sign-up for activities starting within the next day."""
    now = now or utcnow()
    upcoming = (
        Signup.select(Signup, Activity)
        .join(Activity)
        .where(
            Activity.status == Activity.OPEN,
            Activity.starts_at > now,
            Activity.starts_at <= now + datetime.timedelta(days=1),
            Signup.state.in_([Signup.SIGNED_UP, Signup.CHECKED_IN]),
        )
    )
    queued = 0
    for signup in upcoming:
        notice = queue_notice(
            REMINDER, signup.resident_id, dedupe_key=f"reminder:{signup.id}",
            activity=signup.activity.code, title=signup.activity.title,
            starts_at=signup.activity.starts_at.isoformat(timespec="minutes"),
            place=signup.activity.place,
        )
        queued += notice is not None
    return queued


def pending_notices(resident=None, limit=100):
    """Return notices not yet sent, oldest first."""
    query = Notice.select().where(Notice.status == Notice.PENDING).order_by(Notice.id).limit(limit)
    if resident is not None:
        query = query.where(Notice.resident == resident)
    return list(query)
