"""Member cards, and how the counter finds the one-time code it is shown.

A card carries a signed 12-character code (two characters longer than a QR counter code, so the
counter tells them apart) and no personal data. The card alone never spends points: scanning it
sends the resident a six-digit code by Telegram or SMS, which they read out to the clerk.
Reissuing a card revokes the old one.

A resident with no phone (many of the oldest) cannot receive a code, so their card may carry a
PIN they choose when it is made: typed at the counter instead of the code, hashed like a
password, locked after a few wrong tries until a coordinator sets a new one.
"""

import datetime
import hmac
import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from peewee import fn

from community import notices
from community.audit import record
from community.models import AuditEvent, Resident, Staff
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
from .errors import (
    CardReplaced,
    CodeMalformed,
    CodeUnknown,
    PinLocked,
    PinMalformed,
    TooManyCodes,
    TooManyWrongDigits,
    TooManyWrongTries,
    WrongCommunity,
    WrongDigits,
    WrongPin,
)
from .models import CounterCode, MemberCard

CARD_RANDOM, CARD_LENGTH = 10, 12
COUNTER_CODE = "counter_code"  # the notice that carries the six digits
RESEND_AFTER = datetime.timedelta(seconds=60)
#: Codes a resident's card may have sent them in CODE_WINDOW (each one an SMS to their phone).
MAX_CODES = 3
CODE_WINDOW = datetime.timedelta(minutes=10)
#: Wrong six digits one clerk, and all counters together, may type in CODE_WINDOW: guessing codes
#: across residents is slowed, and every wrong try is in the audit log.
CLERK_WRONG_LIMIT = 20
ALL_WRONG_LIMIT = 200
PIN = re.compile(r"[0-9]{4,6}")
MAX_PIN_FAILURES = 5
_hasher = PasswordHasher()


def _card_signature(secret, body):
    return signature(secret, "card:" + body)


def is_card_code(text):
    """Whether a scanned text has the shape of a member card (not of a one-time QR code)."""
    return len(normalise(text)) == CARD_LENGTH


def _pin_hash(pin):
    if not isinstance(pin, str) or not PIN.fullmatch(pin):
        raise PinMalformed()
    return _hasher.hash(pin)


def issue_card(staff, resident, secret, now=None, pin=None):
    """Make a new card for the resident (coordinators); the previous card stops working.

    `pin` (4 to 6 digits) lets a holder with no phone pay at the counter without a code.
    """
    authorize(staff, resident.community, Staff.COORDINATOR)
    ensure_active(resident)
    pin_hash = _pin_hash(pin) if pin else None
    now = now or utcnow()
    body = "".join(secrets.choice(ALPHABET) for _ in range(CARD_RANDOM))
    with db.atomic():
        lock_resident(resident)
        revoked = MemberCard.update(revoked_at=now).where(
            (MemberCard.resident == resident.id) & MemberCard.revoked_at.is_null()
        ).execute()
        card = MemberCard.create(code=body + _card_signature(secret, body), resident=resident,
                                 issued_by=staff, issued_at=now, pin_hash=pin_hash)
        record(staff, "card.reissue" if revoked else "card.issue", f"resident:{resident.id}",
               community=resident.community)
    return card


def set_pin(staff, card, pin):
    """Give a card a new PIN, or none (coordinators); unlocks a PIN locked by wrong tries."""
    authorize(staff, card.resident.community, Staff.COORDINATOR)
    pin_hash = _pin_hash(pin) if pin else None
    with db.atomic():
        MemberCard.update(pin_hash=pin_hash, pin_failures=0).where(MemberCard.id == card.id).execute()
        record(staff, "card.pin" if pin else "card.pin_removed", f"resident:{card.resident_id}",
               community=card.resident.community)
    return MemberCard.get_by_id(card.id)


def code_by_pin(clerk, card, pin, now=None):
    """Check the holder's PIN at the counter and return a fresh six-digit counter code for this
    checkout (sent nowhere: the counter carries it to the confirm, as if it had been read out)."""
    resident = card.resident
    if not can_act(clerk, resident.community, Staff.CLERK, Staff.COORDINATOR):
        raise WrongCommunity()
    card = MemberCard.get_by_id(card.id)
    if card.pin_hash is None:
        raise CodeUnknown()
    if card.pin_failures >= MAX_PIN_FAILURES:
        raise PinLocked()
    try:
        _hasher.verify(card.pin_hash, (pin or "")[:16])
    except (VerificationError, InvalidHashError):
        with db.atomic():
            MemberCard.update(pin_failures=MemberCard.pin_failures + 1).where(MemberCard.id == card.id).execute()
            record(clerk, "card.pin_wrong", f"resident:{resident.id}", community=resident.community)
        left = MAX_PIN_FAILURES - MemberCard.get_by_id(card.id).pin_failures
        if left <= 0:
            raise PinLocked() from None
        raise WrongPin(left=left) from None
    with db.atomic():
        MemberCard.update(pin_failures=0).where(MemberCard.id == card.id).execute()
        code = issue_digit_code(resident, now=now)
        record(clerk, "card.pin_used", f"resident:{resident.id}", community=resident.community)
    return code


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
    recent = CounterCode.select(CounterCode.created_at).where(
        (CounterCode.resident == resident.id) & (CounterCode.kind == CounterCode.DIGITS)
        & (CounterCode.created_at > now - CODE_WINDOW)).order_by(CounterCode.created_at)
    recent = [row.created_at for row in recent]
    if len(recent) >= MAX_CODES:
        raise TooManyCodes(minutes=_minutes_until(recent[-MAX_CODES] + CODE_WINDOW, now))
    with db.atomic():
        code = issue_digit_code(resident, now=now)
        notices.queue_notice(COUNTER_CODE, resident, code=code, minutes=int(LIFETIME.total_seconds() // 60))
        record(clerk, "card.code", f"resident:{resident.id}", community=resident.community)
    return True


def _minutes_until(when, now):
    return max(1, -(-int((when - now).total_seconds()) // 60))


def _wrong_tries(clerk, now):
    """Refuse more typing of six digits when this clerk, or every counter together, typed too many
    wrong ones lately."""
    recent = AuditEvent.select().where((AuditEvent.action == "code.wrong_digits")
                                       & (AuditEvent.created_at > now - CODE_WINDOW))
    if (clerk is not None and recent.where(AuditEvent.staff == clerk.id).count() >= CLERK_WRONG_LIMIT) or (
            recent.count() >= ALL_WRONG_LIMIT):
        first = recent.order_by(AuditEvent.created_at).first()
        raise TooManyWrongTries(minutes=_minutes_until(first.created_at + CODE_WINDOW, now))


def find_counter_code(secret, *, scanned="", card="", phone="", digits="", region="CN", now=None, clerk=None):
    """The usable one-time code a clerk has: a scanned QR code, or six digits with a card or a phone.
    Wrong digits are written to the audit log as the clerk's, and too many of them are refused."""
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
    now = now or utcnow()
    _wrong_tries(clerk, now)
    try:
        return find_digit_code(resident, (digits or "")[:16], now=now)
    except (WrongDigits, TooManyWrongDigits):
        record(clerk, "code.wrong_digits", f"resident:{resident.id}", community=resident.community)
        raise
