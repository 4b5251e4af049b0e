"""Running the staff: list, disable and re-enable, reset a forgotten password, change a role or a
community, and everyone's own password. Admins only, except one's own password; all audited."""

import secrets

from argon2.exceptions import InvalidHashError, VerificationError

from ledger import db
from ledger.models import utcnow

from .audit import record
from .errors import (
    BadCredentials,
    InvalidInput,
    LastAdmin,
    NotPermitted,
    NotYourself,
    PasswordIsUsername,
    PasswordTooCommon,
    PasswordTooShort,
    UnknownCommunity,
)
from .models import Community, Staff
from .people import _hasher, authorize, check_placement, create_staff

MIN_PASSWORD = 10
#: Passwords people pick first, as they are typed in Chinese offices too; refused whatever their length.
COMMON = frozenset((
    "password", "password1", "password123", "passw0rd", "qwerty", "qwerty123", "qwertyuiop",
    "1q2w3e4r", "1q2w3e4r5t", "asdfghjkl", "iloveyou", "woaini", "woaini1314", "woaini520",
    "5201314", "1314520", "admin", "admin123", "admin1234", "administrator", "root", "welcome",
    "welcome1", "letmein", "abc123", "abc123456", "a123456", "a12345678", "a123456789", "aa123456",
    "zxcvbnm", "123qwe", "123456", "1234567", "12345678", "123456789", "1234567890", "0123456789",
    "987654321", "9876543210", "111111", "11111111", "1111111111", "000000", "00000000",
    "0000000000", "888888", "88888888", "8888888888", "666666", "66666666", "6666666666", "123123",
    "123123123", "112233", "11223344", "147258369", "159357", "lilin", "linli", "linli123",
    "community", "shequ", "shequ123",
))


def check_password(password, username=""):
    """Refuse a weak password with the reason, in words a person acts on."""
    password = password or ""
    if len(password) < MIN_PASSWORD:
        raise PasswordTooShort(length=MIN_PASSWORD)
    if username and password.strip().lower() == username.strip().lower():
        raise PasswordIsUsername()
    if password.lower() in COMMON or len(set(password)) <= 2:
        raise PasswordTooCommon()
    return password


def one_time_password():
    """A password to read out or hand over once; it must be changed at the next login."""
    return secrets.token_urlsafe(9)


def add_staff(admin, username, role, community=None, display_name=""):
    """Add a colleague with a one-time password, which they change at their first login; return
    (the staff member, the password to hand over once)."""
    _admin_only(admin)
    password = one_time_password()
    with db.atomic():
        made = create_staff(username, password, role, community, display_name=display_name)
        Staff.update(must_change_password=True).where(Staff.id == made.id).execute()
        record(admin, "staff.create", f"staff:{made.id}", {"username": made.username, "role": made.role},
               community=community)
    return Staff.get_by_id(made.id), password


def staff_list():
    """Every staff user, active ones first, by role and name."""
    order = {role: n for n, role in enumerate(Staff.ROLES)}
    return sorted(Staff.select(), key=lambda s: (not s.active, order.get(s.role, 9), s.username))


def find_staff(username):
    staff = Staff.get_or_none(Staff.username == (username or "").strip())
    if staff is None:
        raise InvalidInput(f"no staff user is called {username!r}")
    return staff


def _last_admin(staff):
    return staff.role == Staff.ADMIN and not Staff.select().where(
        (Staff.role == Staff.ADMIN) & Staff.active & (Staff.id != staff.id)).exists()


def _admin_only(admin):
    """Admins only; None is the operator at the command line (`flask staff …`), who needs none."""
    if admin is not None:
        authorize(admin, None, Staff.ADMIN)


def set_active(admin, staff, active):
    """Disable a leaver (their open sessions end at their next request) or enable them again."""
    _admin_only(admin)
    if not active and admin is not None and admin.id == staff.id:
        raise NotYourself()
    if not active and _last_admin(staff):
        raise LastAdmin()
    with db.atomic():
        Staff.update(active=active, sessions=Staff.sessions + 1).where(Staff.id == staff.id).execute()
        record(admin, "staff.enable" if active else "staff.disable", f"staff:{staff.id}", {"username": staff.username},
               community=staff.community)
    return Staff.get_by_id(staff.id)


def reset_password(admin, staff):
    """Give a staff member a one-time password (returned once, never stored in clear); they choose
    their own at the next login, and their open sessions end."""
    _admin_only(admin)
    password = one_time_password()
    with db.atomic():
        Staff.update(password_hash=_hasher.hash(password), must_change_password=True,
                     sessions=Staff.sessions + 1).where(Staff.id == staff.id).execute()
        record(admin, "staff.reset_password", f"staff:{staff.id}", {"username": staff.username},
               community=staff.community)
    return password


def change_role(admin, staff, role, community_code=None):
    """Change what a staff member may do and where."""
    _admin_only(admin)
    community = None
    if community_code:
        community = Community.get_or_none(Community.code == community_code)
        if community is None:
            raise UnknownCommunity(code=community_code)
    check_placement(role, community)
    if role != Staff.ADMIN and _last_admin(staff) and staff.active:
        raise LastAdmin()
    with db.atomic():
        Staff.update(role=role, community=community if role != Staff.ADMIN else None,
                     sessions=Staff.sessions + 1).where(Staff.id == staff.id).execute()
        record(admin, "staff.role", f"staff:{staff.id}",
               {"username": staff.username, "role": role, "community": community.code if community else ""},
               community=community)
    return Staff.get_by_id(staff.id)


def change_own_password(staff, current, new):
    """Everyone's own password: the current one required, the new one strong enough."""
    if staff is None or not staff.active:
        raise NotPermitted()
    try:
        _hasher.verify(staff.password_hash, current or "")
    except (VerificationError, InvalidHashError):
        raise BadCredentials() from None
    check_password(new, staff.username)
    if new == current:
        raise InvalidInput("the new password is the same as the current one")
    with db.atomic():
        Staff.update(password_hash=_hasher.hash(new), must_change_password=False).where(
            Staff.id == staff.id).execute()
        record(staff, "staff.own_password", f"staff:{staff.id}", community=staff.community)
    return Staff.get_by_id(staff.id)


def end_sessions(staff):
    """End every open session of a staff member (a logout ends its copies too)."""
    Staff.update(sessions=Staff.sessions + 1).where(Staff.id == staff.id).execute()


def logged_in(staff):
    """Note a successful login (the staff list shows the last one)."""
    Staff.update(last_login_at=utcnow()).where(Staff.id == staff.id).execute()
