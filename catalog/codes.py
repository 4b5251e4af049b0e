"""One-time counter codes: a QR code from the bot, or six digits by SMS for a phone and a card.

A QR code is short uppercase ASCII (no 0, 1, I or O), signed with the server's secret so that
a typo is caught before any lookup, and holds no personal data. Every code is single-use,
expires after ten minutes, and asking again replaces the resident's previous code.

The database keeps only a keyed hash of each code (under the ledger key, which never lives in
the database), so someone who can read it cannot use a live code, nor try the million six-digit
codes against it.
"""

import datetime
import hashlib
import hmac
import secrets
import unicodedata

from community.models import Resident
from community.people import ensure_active
from ledger import db
from ledger.keys import current_key
from ledger.models import utcnow

from .errors import CodeExpired, CodeMalformed, CodeReplaced, CodeUnknown, CodeUsed, TooManyWrongDigits, WrongDigits
from .models import CounterCode

ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
RANDOM_LENGTH, SIGNATURE_LENGTH = 8, 2
LIFETIME = datetime.timedelta(minutes=10)
MAX_FAILED_ATTEMPTS = 5


def signature(secret, body):
    """Two characters of the alphabet that only the server can compute for `body`."""
    digest = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    return "".join(ALPHABET[b % len(ALPHABET)] for b in digest[:SIGNATURE_LENGTH])


def stored(kind, code):
    """What the database keeps of a code: 16 hex digits of its HMAC under the ledger key."""
    return hmac.new(current_key(), f"counter code:{kind}:{code}".encode(), hashlib.sha256).hexdigest()[:16]


def normalise(text):
    """Fold what a scanner or a person typed (full-width, lower case, spaces, dashes) to a code."""
    folded = unicodedata.normalize("NFKC", text or "").upper()
    return "".join(ch for ch in folded if ch not in " -_\t\r\n")


def lock_resident(resident):
    """Hold the resident's row until the transaction ends, so that two requests issuing one of
    their codes or cards at once take turns (a unique index allows one live code or card)."""
    Resident.update(status=Resident.status).where(Resident.id == resident.id).execute()


def _issue(resident, kind, code, now):
    ensure_active(resident)
    with db.atomic():
        lock_resident(resident)
        CounterCode.update(replaced_at=now).where(
            (CounterCode.resident == resident.id) & (CounterCode.kind == kind)
            & CounterCode.used_at.is_null() & CounterCode.replaced_at.is_null()
        ).execute()
        return CounterCode.create(code=stored(kind, code), kind=kind, resident=resident, created_at=now,
                                  expires_at=now + LIFETIME)


def issue_qr_code(resident, secret, now=None, kind=CounterCode.QR):
    """Issue a resident's signed code (replacing any earlier one of its kind); return its text.

    `kind` QR is shown at the counter; LINK is opened in Telegram to link the account.
    """
    body = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
    code = body + signature(secret, body)
    _issue(resident, kind, code, now or utcnow())
    return code


def issue_digit_code(resident, now=None):
    """Issue a resident's six-digit counter code (replacing any earlier one); return it."""
    code = f"{secrets.randbelow(10**6):06d}"
    _issue(resident, CounterCode.DIGITS, code, now or utcnow())
    return code


def _usable(row, now):
    if row.used_at is not None:
        raise CodeUsed()
    if row.replaced_at is not None:
        raise CodeReplaced()
    if row.expires_at <= now:
        raise CodeExpired()
    return row


def find_qr_code(text, secret, now=None, kind=CounterCode.QR):
    """Return the usable signed code row for a scanned text, or raise the error that says why not."""
    code = normalise(text)
    body, sig = code[:RANDOM_LENGTH], code[RANDOM_LENGTH:]
    if (len(code) != RANDOM_LENGTH + SIGNATURE_LENGTH or any(ch not in ALPHABET for ch in code)
            or not hmac.compare_digest(sig, signature(secret, body))):
        raise CodeMalformed()
    row = (CounterCode.select().where((CounterCode.code == stored(kind, code)) & (CounterCode.kind == kind))
           .order_by(CounterCode.id.desc()).first())
    if row is None:
        raise CodeUnknown()
    return _usable(row, now or utcnow())


def find_digit_code(resident, text, now=None):
    """Return the resident's usable six-digit code if `text` matches it; count failed tries."""
    now = now or utcnow()
    digits = normalise(text)
    if len(digits) != 6 or not digits.isdigit():
        raise CodeMalformed()
    row = (CounterCode.select().where((CounterCode.resident == resident.id) & (CounterCode.kind == CounterCode.DIGITS))
           .order_by(CounterCode.id.desc()).first())
    if row is None:
        raise CodeUnknown()
    if row.failed_attempts >= MAX_FAILED_ATTEMPTS:
        raise TooManyWrongDigits()
    digits = stored(CounterCode.DIGITS, digits)
    if not hmac.compare_digest(row.code, digits):
        if _an_earlier_code(resident, row, digits, now):
            raise CodeReplaced()  # asked twice by SMS: not a guess, and the counter says so
        with db.atomic():
            tried = CounterCode.update(failed_attempts=CounterCode.failed_attempts + 1)
            tried.where(CounterCode.id == row.id).execute()
            # Guessing is cut short: after a few wrong tries the code is void.
            CounterCode.update(replaced_at=now).where(
                (CounterCode.id == row.id) & (CounterCode.failed_attempts >= MAX_FAILED_ATTEMPTS)
                & CounterCode.replaced_at.is_null()
            ).execute()
        left = MAX_FAILED_ATTEMPTS - CounterCode.get_by_id(row.id).failed_attempts
        if left <= 0:
            raise TooManyWrongDigits()
        raise WrongDigits(left=left)
    return _usable(row, now)


def _an_earlier_code(resident, newest, digits, now):
    """Tell whether `digits` (as stored) is one of the resident's earlier codes that a newer one replaced
    while it was still valid."""
    earlier = CounterCode.select().where(
        (CounterCode.resident == resident.id) & (CounterCode.kind == CounterCode.DIGITS)
        & (CounterCode.id < newest.id) & (CounterCode.expires_at > now) & CounterCode.used_at.is_null()
    )
    return any(hmac.compare_digest(old.code, digits) for old in earlier)


def consume(row, now=None):
    """Use a code once: the first caller wins, any other gets CodeUsed (one statement)."""
    used = CounterCode.update(used_at=now or utcnow()).where(
        (CounterCode.id == row.id) & CounterCode.used_at.is_null() & CounterCode.replaced_at.is_null()
    ).execute()
    if not used:
        raise CodeUsed()
