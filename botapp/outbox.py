"""Draining the notices outbox: claim, render in the resident's language, send, mark.

Several workers may drain at once: a claim is a conditional UPDATE to "sending" with a lease
(PostgreSQL picks rows with SKIP LOCKED). A worker that dies between sending and marking leaves
the notices it was sending "sending"; when the lease runs out they are claimed again, so a notice
is never lost. Neither Telegram nor Twilio takes an idempotency key, so in that one case they may
arrive twice.
"""

import datetime
import json
import logging

from peewee import fn

import ledger
from catalog import cards, checkout
from community import Notice, Resident
from community import notices as kinds
from ledger import db
from ledger.models import utcnow

from .channels import capabilities, redacted
from .dialogue import short, truncate
from .segments import fits

log = logging.getLogger(__name__)

SENDING, SKIPPED = "sending", "skipped"
LEASE = datetime.timedelta(minutes=10)
MAX_ATTEMPTS = 5
#: How long a notice over the daily SMS cap waits before it tries again.
HELD_FOR = datetime.timedelta(hours=1)


class TemporaryFailure(Exception):
    """The provider could not take the message now; try again later."""

    def __init__(self, message, retry_after=None):
        super().__init__(message)
        self.retry_after = retry_after


class PermanentFailure(Exception):
    """The provider refused the message for good (blocked bot, invalid number)."""


# --- claiming and marking ----------------------------------------------------------------------


def claim(limit=20, now=None, lease=LEASE):
    """Take up to `limit` due notices for this worker, at most one per person; return them."""
    now = now or utcnow()
    with db.atomic():
        # Notices whose worker died mid-send come back once their lease has run out, unless
        # they have had all their tries.
        expired = (Notice.status == SENDING) & (Notice.next_attempt_at <= now)
        Notice.update(status=Notice.FAILED, last_error="gave up: no worker finished sending it").where(
            expired & (Notice.attempts >= MAX_ATTEMPTS)
        ).execute()
        Notice.update(status=Notice.PENDING).where(expired).execute()
        # Order is kept per person: a notice waits while an earlier one to them waits for a retry.
        # Two lookups, each answered by an index (one OR of both read every pending notice). Under
        # an OR, PostgreSQL keeps each a per-row index probe whatever its statistics say; made an
        # anti-join on stale statistics (a sudden backlog), the probe was a scan of the backlog.
        earlier = Notice.alias()

        def waiting(same):
            return fn.EXISTS(earlier.select(earlier.id).where(
                same & (earlier.status == Notice.PENDING) & (earlier.id < Notice.id)))

        first = (Notice.resident.is_null() | ~waiting(earlier.resident == Notice.resident)) & (
            (Notice.address == "") | ~waiting(earlier.address == Notice.address))
        due = (
            Notice.select(Notice.id)
            .where((Notice.status == Notice.PENDING) & (Notice.next_attempt_at <= now) & first)
            .order_by(Notice.id)
            .limit(limit)
        )
        if ledger.is_postgresql():
            due = due.for_update(skip_locked=True)
        ids = [n.id for n in due]
        if not ids:
            return []
        Notice.update(status=SENDING, attempts=Notice.attempts + 1, next_attempt_at=now + lease).where(
            Notice.id.in_(ids) & (Notice.status == Notice.PENDING)
        ).execute()
    return list(Notice.select().where(Notice.id.in_(ids) & (Notice.status == SENDING)).order_by(Notice.id))


def _mine(notice):
    """The notice, as long as this worker's claim on it stands (no other worker took it over)."""
    return (Notice.id == notice.id) & (Notice.status == SENDING) & (Notice.attempts == notice.attempts)


def _settle(notice, **fields):
    """End the notice's life in the outbox: a one-time code it carried is no longer kept."""
    params = kinds.notice_params(notice)
    if "code" in params:
        params["code"] = "******"
    if "text" in params:
        params["text"] = redacted(params["text"])
    Notice.update(params=json.dumps(params, ensure_ascii=False), **fields).where(_mine(notice)).execute()


def mark_sent(notice, channel, provider_id=""):
    """Record that the notice went out."""
    _settle(notice, status=Notice.SENT, channel=channel, provider_id=provider_id or "", sent_at=utcnow(), last_error="")


def mark_skipped(notice, why):
    """Record that the resident cannot be reached (no channel, opted out)."""
    _settle(notice, status=SKIPPED, last_error=why[:500])


def mark_retry(notice, error, retry_after=None, now=None, max_attempts=MAX_ATTEMPTS):
    """Put the notice back with exponential backoff, or give up after `max_attempts` tries."""
    now = now or utcnow()
    if notice.attempts >= max_attempts:
        _settle(notice, status=Notice.FAILED, last_error=str(error)[:500])
        log.warning("notice %s failed for good after %d attempts", notice.id, notice.attempts)
        return
    delay = retry_after if retry_after is not None else min(3600, 15 * 2 ** (notice.attempts - 1))
    Notice.update(status=Notice.PENDING, last_error=str(error)[:500],
                  next_attempt_at=now + datetime.timedelta(seconds=delay)).where(_mine(notice)).execute()


def mark_failed(notice, error):
    """Give up on a notice the provider refused for good; staff see it as failed."""
    _settle(notice, status=Notice.FAILED, last_error=str(error)[:500])


def record_delivery_status(provider_id, status, error_code=""):
    """Store a provider's delivery status callback on the notice it belongs to."""
    if not provider_id:
        return 0
    detail = f"{status[:20]}" + (f" ({error_code[:10]})" if error_code else "")
    return Notice.update(delivery_status=detail).where(Notice.provider_id == provider_id[:64]).execute()


# --- rendering -----------------------------------------------------------------------------------


def render(notice, resident, dialogue, channel, redact=False):
    """The notice's text in the resident's language, within the SMS budget on SMS.

    `redact` hides a one-time code, for the log and for staff who see the notice.
    """
    _ = dialogue.gettext(resident.language)
    p = kinds.notice_params(notice)
    secret = "******" if redact else p.get("code", "")
    points = ledger.format_amount(p.get("points", 0))
    balance = ledger.format_amount(p.get("balance", 0))
    title = short(p.get("title", ""))
    code = p.get("activity", "")
    when = dialogue.local(datetime.datetime.fromisoformat(p["starts_at"])) if p.get("starts_at") else ""
    reason = short(p.get("reason", ""), 40)
    place = short(p.get("place", "")) or "-"
    case, hours = p.get("case", ""), p.get("hours", 0)
    community = resident.community
    ask = (_("Questions? Call %(phone)s.", phone=community.phone) if community.phone
           else _("Questions? Ask your community office."))
    templates = {
        kinds.SIGNED_UP: lambda t: _("Signed up: %(code)s %(title)s, %(when)s.", code=code, title=t, when=when),
        kinds.WAITLISTED: lambda t: _("Waitlisted: %(code)s %(title)s. We will tell you if a place frees up.",
                                      code=code, title=t),
        kinds.PROMOTED: lambda t: _("Good news: a place freed up. You are signed up for %(code)s %(title)s, "
                                    "%(when)s.", code=code, title=t, when=when),
        kinds.CANCELLED: lambda t: _("Your sign-up for %(code)s %(title)s is cancelled.", code=code, title=t),
        kinds.CONFIRMED: lambda t: _("+%(points)s points for %(title)s. Balance: %(balance)s.",
                                     points=points, title=t, balance=balance),
        kinds.REJECTED: lambda t: _("Not confirmed: %(title)s. Reason: %(reason)s", title=t,
                                    reason=reason) + " " + ask,
        kinds.REVERSED: lambda t: _("The %(points)s points for %(title)s were taken back: %(reason)s. Balance: "
                                    "%(balance)s.", points=points, title=t, reason=reason, balance=balance)
        if t else _("An award of %(points)s points was reversed: %(reason)s. Balance: "
                    "%(balance)s.", points=points, reason=reason, balance=balance),
        kinds.ACTIVITY_CANCELLED: lambda t: _("Cancelled: %(code)s %(title)s. %(reason)s", code=code, title=t,
                                              reason=reason),
        kinds.REMINDER: lambda t: _("Reminder: %(code)s %(title)s, %(when)s at %(place)s.", code=code, title=t,
                                    when=when, place=place),
        kinds.ANNOUNCEMENT: lambda t: p.get("text", ""),
        kinds.CASE_RECEIVED: lambda t: _("Your report no. %(case)s is recorded; you will hear back within %(hours)d "
                                         "hours. Reply PROGRESS %(case)s to follow it.", case=case, hours=hours),
        kinds.CASE_ACCEPTED: lambda t: _("No. %(case)s is taken on; it should be dealt with within %(hours)d hours.",
                                         case=case, hours=hours),
        kinds.CASE_HANDLED: lambda t: _("No. %(case)s was dealt with: %(what)s. Is it solved? Reply 1 solved, "
                                        "2 not solved.", case=case, what=t) if p.get("ask") else
        _("No. %(case)s was dealt with: %(what)s.", case=case, what=t),
        kinds.CASE_CLOSED: lambda t: _("No. %(case)s is closed. Thank you!", case=case) + (
            " " + _("+%(points)s points. Balance: %(balance)s.", points=points, balance=balance)
            if p.get("points") else ""),
        kinds.CASE_REOPENED: lambda t: _("No. %(case)s is open again; it should be dealt with within %(hours)d "
                                         "hours.", case=case, hours=hours),
        kinds.CASE_REFUSED: lambda t: _("No. %(case)s cannot be taken up: %(reason)s", case=case,
                                        reason=reason) + " " + ask,
        kinds.CASE_MERGED: lambda t: _("No. %(case)s is the same matter as no. %(original)s; you will hear how "
                                       "that one goes.", case=case, original=p.get("original", "")),
        kinds.CASE_OVERDUE: lambda t: _("Case no. %(case)s (%(title)s) is well past its time limit. Please see "
                                        "that it is dealt with.", case=case, title=t),
        checkout.RECEIPT: lambda t: _("Redeemed %(items)s for %(points)s points. Balance: %(balance)s.",
                                items=short(p.get("items", ""), 40), points=points, balance=balance),
        cards.COUNTER_CODE: lambda t: _("Your counter code: %(code)s. Read it out to the clerk. It works once, for "
                                    "%(minutes)d minutes.", code=secret, minutes=p.get("minutes", 10)),
        checkout.VOIDED: lambda t: _("A redemption of %(points)s points was voided: %(reason)s. Balance: "
                                         "%(balance)s.", points=points, reason=reason, balance=balance),
    }
    # SMS names its sender, as Chinese SMS do: 【东梅社区】
    budget = capabilities(channel).segment_budget
    sender = _("[%(community)s] ", community=short(community.name(resident.language), 8)) if budget else ""
    make = templates.get(notice.kind)
    if make is None:
        return sender + _("You have a new message from your community.")
    text = sender + make(title)
    if budget:
        # Shorten the quoted title first, one character at a time (bounded), then the whole text.
        for keep in range(len(title) - 1, -1, -1):
            if fits(text, budget):
                break
            text = sender + make(title[:keep] + "…")
        if not fits(text, budget):
            text = truncate(text)
    return text


def recent_notices(resident, limit=10):
    """A resident's latest notices, newest first (for the simulator)."""
    return list(Notice.select().where(Notice.resident == resident.id).order_by(Notice.id.desc()).limit(limit))


def resident_of(notice):
    return Resident.get_by_id(notice.resident_id)


def reply_text(notice):
    """The text of a queued reply."""
    return kinds.notice_params(notice).get("text", "")


def sent_today(channel, now=None):
    """How many notices went out on `channel` in the last 24 hours (a SIM's daily cap)."""
    since = (now or utcnow()) - datetime.timedelta(days=1)
    return Notice.select().where((Notice.channel == channel) & (Notice.status == Notice.SENT)
                                 & (Notice.sent_at > since)).count()


def mark_held(notice, why, now=None):
    """Put a notice back untried (the daily cap): it goes out in HELD_FOR, and the try does not count."""
    Notice.update(status=Notice.PENDING, attempts=Notice.attempts - 1, last_error=why[:500],
                  next_attempt_at=(now or utcnow()) + HELD_FOR).where(_mine(notice)).execute()
