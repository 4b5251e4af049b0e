"""Staff logins, slowed down after failures so that passwords cannot be guessed.

Failures are counted in the database, so every web process sees the same counts. USERNAME_LIMIT
failures for one username within WINDOW lock that username out for FIRST_LOCKOUT; each further
lockout of it within MEMORY lasts twice as long as the one before, up to MAX_LOCKOUT. ADDRESS_LIMIT
failures from one client address only slow that address down (ADDRESS_PAUSE each time): behind
one office NAT or an untrusted proxy everybody shares an address, and an attacker must not be
able to lock every colleague out with it. While locked out nothing is checked: even the right
password is refused. A successful login forgives only that username's failures from that address.
"""

import datetime
import hashlib
import ipaddress
import logging
import math
import unicodedata

from ledger import db
from ledger.models import utcnow

from .audit import record
from .errors import BadCredentials, TooManyLogins
from .models import LoginFailure, LoginLockout, Staff
from .people import authenticate, mask_phone_numbers

log = logging.getLogger(__name__)

USERNAME_LIMIT = 5
ADDRESS_LIMIT = 20
WINDOW = datetime.timedelta(minutes=15)
FIRST_LOCKOUT = datetime.timedelta(minutes=15)
MAX_LOCKOUT = datetime.timedelta(hours=24)
MEMORY = datetime.timedelta(hours=24)
ADDRESS_PAUSE = datetime.timedelta(minutes=1)
_MAX_DOUBLINGS = 7  # 15 minutes doubled 7 times is more than MAX_LOCKOUT already


def username_key(username):
    """A digest of the username as typed (trimmed, case and width folded): never the text itself."""
    folded = unicodedata.normalize("NFKC", (username or "").strip()).casefold()
    return hashlib.sha256(folded.encode("utf-8", "surrogatepass")).hexdigest()


def address_key(address):
    """The client address counted against: an IPv4 address, or an IPv6 /64 (one subscriber's)."""
    text = (address or "").strip()
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return text[:64]
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


def log_in(username, password, address, *, now=None):
    """Return the active staff user with these credentials, unless too many logins failed lately.

    Raises TooManyLogins (its `minutes` say how long to wait) while the username or the address
    is locked out, or when this failure locks one of them out; BadCredentials otherwise.
    """
    now = now or utcnow()
    user, place = username_key(username), address_key(address)
    until = locked_until(username, address, now=now)
    if until is not None:
        raise TooManyLogins(minutes=_minutes(until - now))
    # No staff username holds control characters (create_staff refuses them), and PostgreSQL
    # refuses a NUL in a query: such a name is simply a failure.
    plausible = (username or "").strip().isprintable()
    try:
        staff = authenticate(username if plausible else "", password)
    except BadCredentials:
        until = _count_failure(username, user, place, now)
        if until is not None:
            raise TooManyLogins(minutes=_minutes(until - now)) from None
        raise
    with db.atomic():
        LoginFailure.delete().where(
            (LoginFailure.username_key == user) & (LoginFailure.address == place)
        ).execute()
    return staff


def locked_until(username, address, *, now=None):
    """When logins for this username or from this address are accepted again; None if they are."""
    now = now or utcnow()
    keys = [_user_lock(username_key(username))]
    if address_key(address):
        keys.append(_address_lock(address_key(address)))
    latest = (
        LoginLockout.select(LoginLockout.until)
        .where(LoginLockout.key.in_(keys) & (LoginLockout.until > now))
        .order_by(LoginLockout.until.desc())
        .first()
    )
    return latest.until if latest is not None else None


def _user_lock(user):
    return f"user:{user}"


def _address_lock(place):
    return f"addr:{place}"


def _minutes(delta):
    return max(1, math.ceil(delta.total_seconds() / 60))


def _count_failure(username, user, place, now):
    """Record a failed login and lock out what has failed too often; return the lockout's end."""
    with db.atomic():
        LoginFailure.create(username_key=user, address=place, created_at=now)
        ends = [_lock_if_over(_user_lock(user), LoginFailure.username_key == user, USERNAME_LIMIT, now,
                              username=username, address=place)]
        if place:
            ends.append(_lock_if_over(_address_lock(place), LoginFailure.address == place, ADDRESS_LIMIT, now,
                                      username=None, address=place))
        LoginFailure.delete().where(LoginFailure.created_at < now - MEMORY).execute()
        LoginLockout.delete().where((LoginLockout.created_at < now - MEMORY) & (LoginLockout.until < now)).execute()
    return max((end for end in ends if end is not None), default=None)


def _lock_if_over(key, failures, limit, now, *, username, address):
    """Lock `key` out when `failures` (since its last lockout, within WINDOW) reach `limit`."""
    earlier = list(LoginLockout.select().where((LoginLockout.key == key) & (LoginLockout.created_at > now - MEMORY)))
    last_end = max((lockout.until for lockout in earlier), default=None)
    if last_end is not None and last_end > now:
        return last_end  # another request has just locked it out
    since = now - WINDOW if last_end is None else max(now - WINDOW, last_end)
    count = LoginFailure.select().where(failures & (LoginFailure.created_at >= since)).count()
    if count < limit:
        return None
    if username is None:  # an address: slowed down, never locked out for long
        until = now + ADDRESS_PAUSE
    else:
        until = now + min(FIRST_LOCKOUT * 2 ** min(len(earlier), _MAX_DOUBLINGS), MAX_LOCKOUT)
    _record_lockout(username, address, count, _minutes(until - now))
    LoginLockout.create(key=key, created_at=now, until=until)
    return until


def _record_lockout(username, address, failures, minutes):
    """Write the lockout to the audit log (and the process log) without a password or a phone number."""
    address = mask_phone_numbers(address)
    detail = {"failures": failures, "minutes": minutes, "address": address}
    staff = None
    if username is None:
        target = f"address:{address}"
    else:
        staff = Staff.get_or_none(Staff.username == (username or "").strip())
        detail["username"] = _masked(username, known=staff is not None)
        target = f"staff:{staff.id}" if staff is not None else f"username:{detail['username']}"
    record(None, "login.lockout", target[:100], detail, community=staff.community if staff else None)
    log.warning("logins locked for %d minutes after %d failures: %s", minutes, failures, target)


def _masked(username, *, known):
    """A username fit for the log: phone-like digits masked; an unknown one (maybe a password) cut short."""
    text = (username or "").strip()
    if not known:
        return text[:2] + "…" if len(text) > 2 else "…"
    return mask_phone_numbers(text)



def unlock_address(address, *, now=None):
    """Lift the slowing-down of a client address at once (an operator's command)."""
    now = now or utcnow()
    place = address_key(address)
    with db.atomic():
        LoginFailure.delete().where(LoginFailure.address == place).execute()
        ended = LoginLockout.update(until=now).where(
            (LoginLockout.key == _address_lock(place)) & (LoginLockout.until > now)).execute()
        if ended:
            record(None, "login.unlock", f"address:{place}")
    return ended


def unlock(username, *, now=None):
    """Let a locked-out username log in again at once, its failures forgiven (an operator's command)."""
    now = now or utcnow()
    user = username_key(username)
    with db.atomic():
        LoginFailure.delete().where(LoginFailure.username_key == user).execute()
        ended = LoginLockout.update(until=now).where(
            (LoginLockout.key == _user_lock(user)) & (LoginLockout.until > now)
        ).execute()
        if ended:
            staff = Staff.get_or_none(Staff.username == (username or "").strip())
            target = f"staff:{staff.id}" if staff is not None else f"username:{_masked(username, known=False)}"
            record(None, "login.unlock", target, community=staff.community if staff else None)
    return ended
