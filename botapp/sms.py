"""The SMS adapter: one inbound text message in, at most one reply out, each exactly once."""

import datetime
import logging

from peewee import IntegrityError

from community.errors import InvalidPhone
from community.people import mask_phone, normalise_phone
from ledger import db
from ledger.models import utcnow

from .dialogue import SMS, parse
from .models import Inbound

log = logging.getLogger(__name__)

#: How many messages one number may send in RATE_WINDOW before it is slowed down.
RATE_LIMIT = 10
RATE_WINDOW = datetime.timedelta(minutes=10)


def receive(dialogue, message_id, sender, body, *, now=None, limit=RATE_LIMIT, window=RATE_WINDOW):
    """Answer one inbound SMS; return the reply text, or None when nothing should be sent.

    A redelivered message id changes nothing and gets the reply it got the first time. A number
    over the rate limit gets one polite reply, then silence until the window has passed.
    """
    now = now or utcnow()
    try:
        phone = normalise_phone(sender, dialogue.region)
    except InvalidPhone:
        log.info("SMS from an unusable sender address ignored")
        return None
    key = f"sms:{message_id}"[:80]
    try:
        with db.atomic():
            command, _ = parse(body)
            # STOP and START always get through; MORE pages through a reply and is not counted.
            counted = command not in ("stop", "start", "more")
            inbound = Inbound.create(key=key, address=phone if counted else "", created_at=now)
            recent = Inbound.select().where(
                (Inbound.address == phone) & (Inbound.created_at > now - window)
            ).count()
            if counted and recent > limit:
                text = _slow_down(dialogue, phone) if recent == limit + 1 else None
                log.info("SMS from %s over the rate limit (%d in the window)", mask_phone(phone), recent)
            else:
                reply = dialogue.handle(SMS, phone, body or "", now=now)
                text = None if reply.silent else reply.full_text()
            Inbound.update(reply=text or "").where(Inbound.id == inbound.id).execute()
    except IntegrityError:
        seen = Inbound.get_or_none(Inbound.key == key)
        log.info("SMS %s delivered again; answered from the first time", key)
        return (seen.reply or None) if seen else None
    return text


def _slow_down(dialogue, phone):
    conversation = dialogue.conversation(SMS, phone)
    resident = dialogue.resident_for(SMS, phone)
    if conversation.opted_out or (resident and resident.sms_opt_out):
        return None
    _ = dialogue.gettext(resident.language if resident else conversation.language)
    return _("You are sending messages very fast. Please wait a few minutes and try again.")
