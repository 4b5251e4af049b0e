"""Member cards, and how the counter finds the one-time code it is shown.

A card carries a signed 12-character code (two characters longer than a QR counter code, so the
counter tells them apart) and no personal data. The card alone never spends points: scanning it
sends the resident a six-digit code by Telegram or SMS, which they read out to the clerk.
Reissuing a card revokes the old one.
"""

import datetime
import hmac
import secrets

from peewee import fn

from community import notices
from community.audit import record
from community.models import Resident, Staff
from community.people import authorize, can_act, ensure_active, find_resident
from ledger import db
from ledger.models import utcnow

from .codes import (
    ALPHABET,
    LIFETIME,
    find_digit_code,
    find_qr_code,
    issue_digit_code,
    lock_resident,
    normalise,
    signature,
)
from .errors import CardReplaced, CodeMalformed, CodeUnknown, WrongCommunity
from .models import CounterCode, MemberCard

CARD_RANDOM, CARD_LENGTH = 10, 12
COUNTER_CODE = "counter_code"  # the notice that carries the six digits
RESEND_AFTER = datetime.timedelta(seconds=60)


def _card_signature(secret, body):
    return signature(secret, "card:" + body)


def is_card_code(text):
    """Whether a scanned text has the shape of a member card (not of a one-time QR code)."""
    return len(normalise(text)) == CARD_LENGTH


def issue_card(staff, resident, secret, now=None):
    """Make a new card for the resident (coordinators); the previous card stops working."""
    authorize(staff, resident.community, Staff.COORDINATOR)
    ensure_active(resident)
    now = now or utcnow()
    body = "".join(secrets.choice(ALPHABET) for _ in range(CARD_RANDOM))
    with db.atomic():
        lock_resident(resident)
        revoked = MemberCard.update(revoked_at=now).where(
            (MemberCard.resident == resident.id) & MemberCard.revoked_at.is_null()
        ).execute()
        card = MemberCard.create(code=body + _card_signature(secret, body), resident=resident,
                                 issued_by=staff, issued_at=now)
        record(staff, "card.reissue" if revoked else "card.issue", f"resident:{resident.id}",
               community=resident.community)
    return card


def live_card(resident):
    """The resident's current card, or None."""
    return MemberCard.get_or_none((MemberCard.resident == resident.id) & MemberCard.revoked_at.is_null())


def cards_for(community):
    """The current cards of a community's active residents, by name (for a sheet of cards)."""
    return list(
        MemberCard.select(MemberCard, Resident).join(Resident)
        .where((Resident.community == community.id) & (Resident.status == Resident.ACTIVE)
               & MemberCard.revoked_at.is_null())
        .order_by(Resident.display_name, Resident.id)
    )


def _without_card(community):
    live = MemberCard.select().where((MemberCard.resident == Resident.id) & MemberCard.revoked_at.is_null())
    return Resident.select().where((Resident.community == community.id) & (Resident.status == Resident.ACTIVE)
                                   & ~fn.EXISTS(live))


def missing_cards(community):
    """How many active residents of the community have no card."""
    return _without_card(community).count()


def issue_missing_cards(staff, community, secret, now=None):
    """Make a card for every active resident of the community who has none; return how many."""
    authorize(staff, community, Staff.COORDINATOR)
    residents = list(_without_card(community))
    for resident in residents:
        issue_card(staff, resident, secret, now=now)
    return len(residents)


def find_card(text, secret):
    """The live card a scanned text names, or the error that says why not."""
    code = normalise(text)
    body, sig = code[:CARD_RANDOM], code[CARD_RANDOM:]
    if (len(code) != CARD_LENGTH or any(ch not in ALPHABET for ch in code)
            or not hmac.compare_digest(sig, _card_signature(secret, body))):
        raise CodeMalformed()
    card = MemberCard.get_or_none(MemberCard.code == code)
    if card is None:
        raise CodeUnknown()
    if card.revoked_at is not None:
        raise CardReplaced()
    ensure_active(card.resident)
    return card


def send_card_code(clerk, card, now=None):
    """Send the card holder a six-digit counter code through the outbox; False if one just went.

    A second scan within a minute sends nothing new: the first code may still be on its way.
    """
    now = now or utcnow()
    resident = card.resident
    if not can_act(clerk, resident.community, Staff.CLERK, Staff.COORDINATOR):
        raise WrongCommunity()
    just_sent = CounterCode.select().where(
        (CounterCode.resident == resident.id) & (CounterCode.kind == CounterCode.DIGITS)
        & CounterCode.used_at.is_null() & CounterCode.replaced_at.is_null()
        & (CounterCode.created_at > now - RESEND_AFTER)
    ).exists()
    if just_sent:
        return False
    with db.atomic():
        code = issue_digit_code(resident, now=now)
        notices.queue_notice(COUNTER_CODE, resident, code=code, minutes=int(LIFETIME.total_seconds() // 60))
        record(clerk, "card.code", f"resident:{resident.id}", community=resident.community)
    return True


def find_counter_code(secret, *, scanned="", card="", phone="", digits="", region="CN", now=None):
    """The usable one-time code a clerk has: a scanned QR code, or six digits with a card or a phone."""
    scanned = (scanned or "").strip()[:64]
    if scanned and is_card_code(scanned):
        card = scanned
    elif scanned:
        return find_qr_code(scanned, secret, now=now)
    if card:
        resident = find_card(card[:64], secret).resident
    else:
        resident = find_resident(phone=(phone or "")[:32], region=region)
        if resident is None:
            raise CodeUnknown()
    return find_digit_code(resident, (digits or "")[:16], now=now)
