"""The SMS adapter: one inbound text message in, at most one reply out, each exactly once.

Limits stop loops and runaway cost, never a person talking: someone registering and exploring
is answered every time. What is limited is the same text over and over (an auto-reply loop),
machine speed (many messages a minute) and a day's budget of reply segments per number. When a
limit bites, one reply says when to try again; then silence until it has passed. Opting out and
in, cancelling, a counter code and a check-in are always carried out.
"""

import datetime
import hashlib
import logging
import re

from peewee import Case, IntegrityError, fn

from community.errors import InvalidPhone
from community.notices import queue_reply
from community.people import find_resident, mask_phone, normalise_phone
from ledger import db
from ledger.db import prepared, record
from ledger.models import utcnow

from .dialogue import SMS
from .grammar import understand
from .models import Inbound
from .segments import segments

log = logging.getLogger(__name__)

SAME_TEXT_LIMIT = 5  # the same message this often in SAME_TEXT_WINDOW is a loop
SAME_TEXT_WINDOW = datetime.timedelta(minutes=10)
BURST_LIMIT = 20  # more messages than this in BURST_WINDOW is machine speed
BURST_WINDOW = datetime.timedelta(minutes=1)
DAILY_SEGMENTS = 100  # reply segments one number may cost in a day
DAY = datetime.timedelta(days=1)
#: Intents that are carried out whatever the limits say.
ALWAYS = ("stop", "start", "quiet", "loud", "cancel", "code", "here")


def fold(cleaned):
    """A message with case, width, spacing and punctuation folded away, hashed (no text is kept)."""
    bare = re.sub(r"[\s\W_]+", "", cleaned.casefold())
    return hashlib.sha256(bare.encode()).hexdigest()


def receive(dialogue, message_id, sender, body, *, now=None):
    """Answer one inbound SMS; return the reply text, or None when nothing should be sent.

    A redelivered message id changes nothing and gets the reply it got the first time.
    """
    return answer(dialogue, message_id, sender, body, now=now)[1]


def answer(dialogue, message_id, sender, body, *, now=None, queue=False):
    """Answer one inbound SMS: (the sender's number, the reply or None, whether it is the first
    time this message id was seen). The number is None when the sender is no usable number.
    With `queue` the reply also goes into the outbox, in the same transaction (for a provider
    whose webhook cannot carry it)."""
    now = now or utcnow()
    try:
        phone = normalise_phone(sender, dialogue.region)
    except InvalidPhone:
        log.info("SMS from an unusable sender address ignored")
        return None, None, False
    key = f"sms:{message_id}"[:80]
    intent, _argument, cleaned = understand(body)
    folded = fold(cleaned)
    try:
        with db.atomic():
            recent = () if intent in ALWAYS else (
                _recent.bind(phone, folded, now - SAME_TEXT_WINDOW, now - BURST_WINDOW, now - DAY),)
            conversation, sender, counts = dialogue.look_up(SMS, phone, *recent)
            limited = _limit(dialogue, phone, counts[0][0], now) if counts else None
            if limited is not None:
                text = limited or None
                log.info("SMS from %s held by a limit", mask_phone(phone))
            else:
                reply = dialogue.handle(SMS, phone, body or "", now=now, found=(conversation, sender))
                text = None if reply.silent else reply.full_text()
            if queue and text:  # to the resident they were, or have just become
                queue_reply(phone, text, resident=sender[0] or find_resident(phone=phone, region=dialogue.region))
            # Written last, with its reply, in the transaction of what it did: a redelivery
            # fails here (at the latest at COMMIT) and undoes its own second effects.
            record(_keep_inbound.bind(key, phone, folded, now, text or "", segments(text) if text else 0))
    except IntegrityError:
        seen = Inbound.get_or_none(Inbound.key == key)
        log.info("SMS %s delivered again; answered from the first time", key)
        return phone, (seen.reply or None) if seen else None, False
    return phone, text, True


def _count_recent(phone, folded, same_since, burst_since, day_since):
    """One pass over a number's last day: the same text lately (how often, since when), any text
    lately (how often, since when), and the reply segments spent."""
    same_text = (Inbound.fold == folded) & (Inbound.created_at > same_since)
    in_burst = Inbound.created_at > burst_since
    return Inbound.select(
        fn.SUM(Case(None, [(same_text, 1)], 0)), fn.MIN(Case(None, [(same_text, Inbound.created_at)], None)),
        fn.SUM(Case(None, [(in_burst, 1)], 0)), fn.MIN(Case(None, [(in_burst, Inbound.created_at)], None)),
        fn.SUM(Inbound.segments),
    ).where((Inbound.address == phone) & (Inbound.created_at > day_since)).tuples()


_recent = prepared(_count_recent)
_keep_inbound = prepared(lambda key, address, fold, now, reply, cost: Inbound.insert(
    key=key, address=address, fold=fold, created_at=now, reply=reply, segments=cost))


def _limit(dialogue, phone, counts, now):
    """None when the message may be answered, by the `counts` of `_recent`; else the one reply
    that says when to try again (the first time a limit bites), or "" (silence) after it."""
    same, burst, spent = (counts[0] or 0, counts[1]), (counts[2] or 0, counts[3]), counts[4] or 0
    if same[0] < SAME_TEXT_LIMIT and burst[0] < BURST_LIMIT and spent < DAILY_SEGMENTS:
        return None
    language = dialogue.language_of(SMS, phone)
    _ = dialogue.gettext(language)
    if same[0] >= SAME_TEXT_LIMIT:
        until = _as_time(same[1], now) + SAME_TEXT_WINDOW
        first = same[0] == SAME_TEXT_LIMIT
        text = _("You have sent the same message several times. Please try again after %(time)s.",
                 time=dialogue.local(until, "%H:%M"))
    elif burst[0] >= BURST_LIMIT:
        until = _as_time(burst[1], now) + BURST_WINDOW
        first = burst[0] == BURST_LIMIT
        text = _("You are sending messages very fast. Please try again after %(time)s.",
                 time=dialogue.local(until, "%H:%M"))
    else:
        text = _("Today's SMS replies for your number are used up. Please try again tomorrow.")
        first = not Inbound.select().where((Inbound.address == phone) & (Inbound.reply == text)
                                           & (Inbound.created_at > now - DAY)).exists()
    return text if first and not dialogue.opted_out_number(phone) else ""


def _as_time(value, now):
    if isinstance(value, str):  # SQLite hands aggregates back as text
        return datetime.datetime.fromisoformat(value)
    return value or now


