"""The notices outbox: rows written with the change they announce, sent later by the worker."""

import datetime
import json

from peewee import IntegrityError

from ledger import db
from ledger.db import later, prepared
from ledger.models import utcnow

from . import contacts
from .audit import record
from .errors import InvalidInput
from .models import Activity, Notice, Resident, Signup, Staff
from .people import authorize

# Kinds of notice and the parameters each carries (rendered by the channels).
SIGNED_UP, WAITLISTED, PROMOTED = "signed_up", "waitlisted", "promoted"
CONFIRMED, REJECTED, REVERSED = "confirmed", "rejected", "reversed"
ACTIVITY_CANCELLED, REMINDER, CANCELLED = "activity_cancelled", "reminder", "cancelled"
#: A case's steps, each told to its reporter (community.cases).
CASE_RECEIVED, CASE_ACCEPTED, CASE_HANDLED = "case_received", "case_accepted", "case_handled"
CASE_CLOSED, CASE_REOPENED, CASE_REFUSED, CASE_MERGED = "case_closed", "case_reopened", "case_refused", "case_merged"
#: A case gone very late, to its community's coordinators (to the resident record of each).
CASE_OVERDUE = "case_overdue"
#: The dialogue's reply to an inbound SMS, where the provider takes no inline reply (the Android
#: gateway): sent to the number it answers, registered or not, opted out or not.
REPLY = "reply"


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


def queue_reply(phone, text, resident=None):
    """Queue the reply to an SMS from `phone`, in the transaction that handled the SMS (on
    PostgreSQL it goes out with the next statement or the COMMIT)."""
    later(_new_reply.bind(resident.id if resident else None, phone, json.dumps({"text": text}, ensure_ascii=False),
                          utcnow()))


_new_reply = prepared(lambda resident, address, params, now: Notice.insert(
    kind=REPLY, resident=resident, address=address, params=params, created_at=now, next_attempt_at=now))


def notice_params(notice):
    """Return a notice's parameters as a dict."""
    return json.loads(notice.params)


#: How long before an activity its reminder goes out.
REMINDER_AHEAD = datetime.timedelta(days=1)


def queue_reminders(now=None):
    """Queue one reminder per seated sign-up for activities starting within the next day, unless
    the sign-up itself was made within that day (its message already said when and where)."""
    now = now or utcnow()
    upcoming = (
        Signup.select(Signup, Activity)
        .join(Activity)
        .where(
            Activity.status == Activity.OPEN,
            Activity.starts_at > now,
            Activity.starts_at <= now + REMINDER_AHEAD,
            Signup.state.in_([Signup.SIGNED_UP, Signup.CHECKED_IN]),
        )
    )
    queued = 0
    for signup in upcoming:
        if signup.created_at > signup.activity.starts_at - REMINDER_AHEAD:
            continue  # signed up inside the window: the sign-up's own message gave time and place
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


ANNOUNCEMENT = "announcement"
MAX_ANNOUNCEMENT = 300


def purpose(notice):
    """What a notice is for, as community.contacts counts it."""
    return contacts.ANNOUNCEMENTS if notice.kind == ANNOUNCEMENT else contacts.SERVICE


def announce(staff, community, text):
    """Queue an announcement to every reachable resident of a community; return how many."""
    authorize(staff, community, Staff.COORDINATOR)
    text = " ".join((text or "").split())
    if not text or len(text) > MAX_ANNOUNCEMENT or not text.isprintable():
        raise InvalidInput(f"an announcement is 1 to {MAX_ANNOUNCEMENT} printable characters")
    audience = contacts.audience(community, contacts.ANNOUNCEMENTS)
    with db.atomic():
        for resident in audience:
            queue_notice(ANNOUNCEMENT, resident, text=text)
        record(staff, "announcement.send", f"community:{community.code}", {"text": text, "to": len(audience)},
               community=community)
    return len(audience)


def failed_notices(communities, limit=20):
    """Notices that could not be delivered to residents of these communities, newest first."""
    ids = [c.id for c in communities]
    return list(
        Notice.select(Notice, Resident)
        .join(Resident)
        .where((Notice.status == Notice.FAILED) & Resident.community.in_(ids))
        .order_by(Notice.id.desc())
        .limit(limit)
    )
