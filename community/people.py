"""Communities, residents and staff: who is who, and who may do what where."""

import contextlib
import csv
import functools
import io
import re
import uuid
from dataclasses import dataclass, field

import phonenumbers
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from peewee import JOIN, IntegrityError
from pypinyin import lazy_pinyin

import ledger
from ledger import Account, db
from ledger.db import Bound, prepared

from . import contacts
from .audit import record
from .errors import (
    BadCredentials,
    CommunityError,
    DuplicateResident,
    InvalidInput,
    InvalidName,
    InvalidPhone,
    MissingColumns,
    NeedsPhoneOrUnit,
    NotASheet,
    NotPermitted,
    ResidentClosed,
    ResidentNotFound,
    TooManyFields,
    UnknownCommunity,
    UnknownLanguage,
)
from .models import LANGUAGES, Community, Contact, Resident, Staff

_hasher = PasswordHasher()
MAX_NAME = 60


# --- communities -------------------------------------------------------------------------


def create_community(code, name_zh, name_en, level=Community.COMMUNITY, parent=None):
    """Create a community (with its issuer account), street or district."""
    if level not in Community.LEVELS:
        raise InvalidInput(f"unknown level {level!r}")
    with db.atomic():
        community = Community.create(
            code=code, name_zh=name_zh, name_en=name_en, level=level, parent=parent
        )
        if level == Community.COMMUNITY:
            issuer = ledger.open_account(f"issuer:{code}", Account.ISSUER, name_en)
            Community.update(issuer=issuer).where(Community.id == community.id).execute()
            community.issuer = issuer
    return community


def get_community(code):
    """Return the community with this code, or raise UnknownCommunity."""
    community = Community.get_or_none(Community.code == code)
    if community is None:
        raise UnknownCommunity(code=code)
    return community


def communities(level=Community.COMMUNITY):
    """List communities of one level, by code."""
    return list(Community.select().where((Community.level == level) & ~Community.archived).order_by(Community.code))


def within(community, ancestor):
    """Tell whether `community` is `ancestor` or lies below it."""
    node = community
    for _ in range(len(Community.LEVELS) + 1):
        if node is None:
            return False
        if node.id == ancestor.id:
            return True
        node = node.parent
    return False


# --- staff and permissions ---------------------------------------------------------------


def check_placement(role, community):
    """Refuse a role where it cannot work: a grid worker belongs to a grid or unit, a coordinator
    or clerk to a community (or above), an admin to no place."""
    if role not in Staff.ROLES:
        raise InvalidInput(f"role must be one of {', '.join(Staff.ROLES)}")
    if role != Staff.ADMIN and community is None:
        raise InvalidInput("coordinators and clerks belong to a community")
    if role == Staff.GRID_WORKER and community.level not in (Community.GRID, Community.UNIT):
        raise InvalidInput("a grid worker belongs to a grid or a unit")
    if role in (Staff.COORDINATOR, Staff.CLERK) and community.level in (Community.GRID, Community.UNIT):
        raise InvalidInput("coordinators and clerks belong to a community, not a grid")


def create_staff(username, password, role, community=None, display_name="", resident=None):
    """Create a staff user; only admins may have no community."""
    check_placement(role, community)
    username = (username or "").strip()
    if not username or len(username) > 40 or not username.isprintable():
        raise InvalidInput("a username is 1 to 40 printable characters")
    if not password or len(password) < 8:
        raise InvalidInput("a password has at least 8 characters")
    try:
        with db.atomic():
            return Staff.create(
                username=username,
                password_hash=_hasher.hash(password),
                role=role,
                community=community,
                display_name=display_name or username,
                resident=resident,
            )
    except IntegrityError:
        raise InvalidInput(f"username {username!r} is taken") from None


def authenticate(username, password):
    """Return the active staff user with these credentials, or raise BadCredentials."""
    username = (username or "").strip()
    staff = None if "\x00" in username else Staff.get_or_none(Staff.username == username)
    if staff is None or not staff.active:
        _hasher.hash("timing: as slow as a real check")
        raise BadCredentials()
    try:
        _hasher.verify(staff.password_hash, password or "")
    except (VerificationError, InvalidHashError):
        raise BadCredentials() from None
    return staff


def can_act(staff, community, *roles):
    """Tell whether `staff` holds one of `roles` for `community` (admins hold every role). A grid
    worker acts in the community their grid belongs to, for their grid's residents only
    (`in_reach`)."""
    if staff is None or not staff.active:
        return False
    if staff.role == Staff.ADMIN:
        return True
    if staff.role not in roles:
        return False
    home = community_of(staff.community) if staff.role == Staff.GRID_WORKER else staff.community
    return community is None or (home is not None and within(community, home))


def community_of(place):
    """The community a grid or unit belongs to (a community is its own)."""
    node = place
    while node is not None and node.level in (Community.GRID, Community.UNIT):
        node = node.parent
    return node


def grid_of(staff):
    """A grid worker's grid (a unit head's unit's grid), or None for other staff."""
    if staff is None or staff.role != Staff.GRID_WORKER or staff.community is None:
        return None
    place = staff.community
    return place.parent if place.level == Community.UNIT else place


def grid_labels(grid):
    """How a resident's grid label names this grid: by its name or its code."""
    return (grid.name_zh, grid.code)


def in_grid(resident, grid):
    """Tell whether a resident lives in this grid."""
    return resident.community_id == grid.parent_id and resident.grid_label in grid_labels(grid)


def in_reach(staff, resident):
    """Tell whether `staff` may see and act for this resident: coordinators in their communities,
    a grid worker for the residents of their grid."""
    grid = grid_of(staff)
    if grid is None:
        return can_act(staff, resident.community, Staff.COORDINATOR)
    return can_act(staff, resident.community, Staff.GRID_WORKER) and in_grid(resident, grid)


def authorize_for(staff, resident):
    """Raise NotPermitted unless `staff` may act for `resident` (see in_reach)."""
    if not in_reach(staff, resident):
        raise NotPermitted()


def authorize(staff, community, *roles):
    """Raise NotPermitted unless `staff` holds one of `roles` for `community`."""
    if not can_act(staff, community, *roles):
        raise NotPermitted()


def visible_communities(staff):
    """The communities a staff user may see: all for admins, their own (and below) otherwise."""
    everything = communities()
    if staff.role == Staff.ADMIN:
        return everything
    home = community_of(staff.community) if staff.role == Staff.GRID_WORKER else staff.community
    return [c for c in everything if home and within(c, home)]


# --- residents ---------------------------------------------------------------------------


def normalise_phone(text, region):
    """Parse a phone number as people write it into E.164 (+8613800138000), or raise InvalidPhone."""
    return _normalised(text or "", region)


@functools.lru_cache(maxsize=4096)  # every SMS parses its sender once more for each lookup
def _normalised(text, region):
    raw = text.strip()
    if not raw or len(raw) > 32:
        raise InvalidPhone()
    try:
        number = phonenumbers.parse(raw, region)
        if not phonenumbers.is_valid_number(number):
            # "8613800138000": the country code written without a "+".
            number = phonenumbers.parse("+" + raw, None)
    except phonenumbers.NumberParseException:
        raise InvalidPhone() from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone()
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask_phone(e164):
    """Show only what a clerk needs: 138****8000 for a mainland number as people write it,
    the country code kept for others (+852 9****5678)."""
    if not e164:
        return ""
    shown = e164.removeprefix("+86") if e164.startswith("+861") else e164
    return f"{shown[:-8]}****{shown[-4:]}" if len(e164) > 8 else "****"


# Seven or more digits, also when spaced, dashed, bracketed or URL-encoded ("138+0013+8000");
# not dotted, so that an IPv4 address stays readable.
PHONE_LIKE = re.compile(r"\d(?:(?:[ +\-()]|%20|%2[BbDd]){0,2}\d){6,}")


def mask_phone_numbers(text):
    """Mask every phone-like run of digits in free text (a log line, a username typed by mistake)."""

    def mask(match):
        digits = re.sub(r"%2[BbDd]|%20|\D", "", match.group())
        return digits[:3] + "****" + digits[-4:]

    return PHONE_LIKE.sub(mask, text)


def _clean_name(name):
    name = " ".join((name or "").split())
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise InvalidName(f"a name is 1 to {MAX_NAME} printable characters", length=MAX_NAME)
    return name


def _clean_label(label):
    label = " ".join((label or "").split())
    if len(label) > 40 or not label.isprintable():
        raise InvalidInput("grid and unit labels are at most 40 printable characters")
    return label


def register_resident(
    community, display_name, *, phone=None, telegram_id=None, language="zh_Hans",
    grid_label="", unit_label="", status=Resident.ACTIVE, region="CN", staff=None,
):
    """Register a resident with a ledger account; the phone is stored in E.164."""
    name = _clean_name(display_name)
    e164 = normalise_phone(phone, region) if phone else None
    if language not in LANGUAGES:
        raise InvalidInput("language must be zh_Hans or en")
    if staff is not None:
        authorize(staff, community, Staff.COORDINATOR, Staff.GRID_WORKER)
        if grid_of(staff) is not None:  # a grid worker registers the residents of their grid
            grid_label = grid_of(staff).name_zh
    grid_label, unit_label = _clean_label(grid_label), _clean_label(unit_label)
    try:
        with db.atomic():
            account = ledger.open_account(f"resident:{uuid.uuid4().hex}", Account.RESIDENT, name)
            resident = Resident.create(
                community=community,
                display_name=name,
                phone=e164,
                telegram_id=telegram_id,
                language=language,
                grid_label=grid_label,
                unit_label=unit_label,
                status=status,
                account=account,
            )
            if staff is not None:
                record(staff, "resident.register", f"resident:{resident.id}", community=community)
    except IntegrityError:
        raise DuplicateResident() from None
    return resident


def find_resident(*, phone=None, telegram_id=None, resident_id=None, region="CN"):
    """Return the resident matching a phone (any format), Telegram id or id, or None."""
    if resident_id is not None:
        return Resident.select().where(Resident.id == resident_id).first()
    return find_sender(phone=phone, telegram_id=telegram_id, region=region)[0]


def find_sender(*, phone=None, telegram_id=None, region="CN"):
    """The resident writing from this phone (any format) or Telegram id and their contact on that
    channel (an unsaved default when none was kept), in one read: (resident, contact), or (None, None).
    The resident carries `balance_read`, their balance as that read found it (a balance asked for
    in the same transaction is answered without asking again)."""
    return sender_lookup(phone=phone, telegram_id=telegram_id, region=region).run()


def sender_lookup(*, phone=None, telegram_id=None, region="CN"):
    """find_sender's read, to run alone or with others (`ledger.db.together`)."""
    if telegram_id is not None:
        channel, read = Contact.TELEGRAM, _by_telegram.bind(telegram_id)
    else:
        try:
            channel, read = Contact.SMS, _by_phone.bind(normalise_phone(phone, region))
        except InvalidPhone:
            return Bound.known((None, None))
    return read.then(lambda found: _sender(found, channel))


def balance_of(resident):
    """A resident's balance: as the sender look-up read it with them (in the transaction that
    answers their message, before it posts anything), else read now."""
    read = getattr(resident, "balance_read", None)
    return ledger.balance(resident.account_id) if read is None else read


def _sender(found, channel):
    if not found:
        return None, None
    resident = found[0]
    kept = vars(resident).pop("kept")  # None when they have no contact row on the channel
    return resident, kept if kept is not None else Contact(resident=resident.id, channel=channel)


def _with_contact(column, channel):
    balance = Account.select(Account.balance).where(Account.id == Resident.account)
    return prepared(lambda value: Resident.select(Resident, Contact, balance.alias("balance_read")).join(
        Contact, JOIN.LEFT_OUTER, on=(Contact.resident == Resident.id) & (Contact.channel == channel), attr="kept")
        .where(column == value).limit(1))


# The look-ups every message makes, compiled once.
_by_phone = _with_contact(Resident.phone, Contact.SMS)
_by_telegram = _with_contact(Resident.telegram_id, Contact.TELEGRAM)


def get_resident(resident_id):
    """Return the resident with this id, or raise ResidentNotFound."""
    resident = Resident.by_id(resident_id)
    if resident is None:
        raise ResidentNotFound()
    return resident


def ensure_active(resident):
    """Raise ResidentClosed when the resident's account is closed."""
    if resident.status == Resident.CLOSED:
        raise ResidentClosed()


def by_name(resident):
    """Sort key: the name as a Chinese list is ordered, by pinyin (陈 before 王), then the name."""
    return ("".join(lazy_pinyin(resident.display_name)).lower(), resident.display_name, resident.id)


def by_unit(resident):
    """Sort key: building and unit as people count them (2 before 10), then the name."""
    parts = re.split(r"(\d+)", resident.unit_label or "")
    return ([int(p) if p.isdigit() else p for p in parts], by_name(resident))


def search_residents(staff, text="", limit=50, region="CN"):
    """Search residents visible to `staff` by name, building or unit, or any part of the phone
    number (three digits or more)."""
    visible = [c.id for c in visible_communities(staff)]
    query = Resident.select().where(Resident.community.in_(visible))
    grid = grid_of(staff)
    if grid is not None:
        query = query.where(Resident.grid_label.in_(grid_labels(grid)))
    text = (text or "").strip()[:60]
    if text:
        digits = "".join(ch for ch in text if ch.isdigit())
        condition = (Resident.display_name.contains(text) | Resident.unit_label.contains(text)
                     | Resident.grid_label.contains(text))
        if len(digits) >= 3:
            condition |= Resident.phone.contains(digits)
        query = query.where(condition)
    query = query.order_by(Resident.display_name, Resident.id)
    return list(query.limit(limit) if limit else query)


def rename_self(resident, display_name):
    """A resident corrects their own name (by SMS or Telegram); return the name as kept."""
    ensure_active(resident)
    name = _clean_name(display_name)
    Resident.update(display_name=name).where(Resident.id == resident.id).execute()
    return name


def update_resident(staff, resident, **changes):
    """Edit a resident's details (name, phone, language, labels, SMS opt-out)."""
    authorize(staff, resident.community, Staff.COORDINATOR)
    region = changes.pop("region", "CN")
    values = {}
    if "display_name" in changes:
        values["display_name"] = _clean_name(changes.pop("display_name"))
    if "phone" in changes:
        phone = changes.pop("phone")
        values["phone"] = normalise_phone(phone, region) if phone else None
    if "language" in changes:
        if changes["language"] not in LANGUAGES:
            raise InvalidInput("language must be zh_Hans or en")
        values["language"] = changes.pop("language")
    for label in ("grid_label", "unit_label"):
        if label in changes:
            values[label] = _clean_label(changes.pop(label))
    sms_opt_out = changes.pop("sms_opt_out", None)
    if changes:
        raise InvalidInput(f"cannot change {', '.join(sorted(changes))}")
    try:
        with db.atomic():
            Resident.update(**values).where(Resident.id == resident.id).execute()
            if "phone" in values and values["phone"] != resident.phone:  # a new number: its own SMS contact
                contacts.forget(resident, contacts.SMS)
            if sms_opt_out is not None and bool(sms_opt_out) != contacts.opted_out(resident, contacts.SMS):
                contacts.set_opted_out(resident, contacts.SMS, sms_opt_out)
                values["sms_opt_out"] = bool(sms_opt_out)
            record(staff, "resident.edit", f"resident:{resident.id}", sorted(values),
                   community=resident.community)
    except IntegrityError:
        raise DuplicateResident() from None
    return Resident.get_by_id(resident.id)


def close_resident(staff, resident):
    """Close a resident's account: no more sign-ups or spending; history stays."""
    authorize(staff, resident.community, Staff.COORDINATOR)
    with db.atomic():
        Resident.update(status=Resident.CLOSED).where(Resident.id == resident.id).execute()
        record(staff, "resident.close", f"resident:{resident.id}", community=resident.community)
    return Resident.get_by_id(resident.id)


# --- CSV import --------------------------------------------------------------------------

IMPORT_COLUMNS = ("name", "phone", "community", "language", "grid", "unit")
#: The columns as a sheet typed in Chinese names them (the template's headers are the first).
RESIDENT_HEADERS = {
    "姓名": "name", "名字": "name", "居民姓名": "name", "name": "name",
    "手机号": "phone", "手机": "phone", "手机号码": "phone", "电话": "phone", "联系电话": "phone", "phone": "phone",
    "社区": "community", "所属社区": "community", "村居": "community", "community": "community",
    "语言": "language", "language": "language",
    "网格": "grid", "grid": "grid",
    "单元": "unit", "楼栋单元": "unit", "楼栋": "unit", "门牌": "unit", "unit": "unit",
}
TEMPLATE_HEADER = ("姓名", "手机号", "社区", "网格", "单元", "语言")
LANGUAGE_WORDS = {"": "zh_Hans", "zh_hans": "zh_Hans", "zh": "zh_Hans", "中文": "zh_Hans", "汉语": "zh_Hans",
                  "en": "en", "english": "en", "英文": "en", "英语": "en"}


@dataclass
class ImportReport:
    """What an import did: rows created, rows already there, and each bad row with its line
    number and reason (`refused` keeps the named errors, for a transport to translate)."""

    created: int = 0
    unchanged: int = 0
    errors: list = field(default_factory=list)
    refused: list = field(default_factory=list)

    def refuse(self, line, exc):
        self.errors.append((line, str(exc)))
        self.refused.append((line, exc))


def decode_csv(data):
    """CSV bytes as text: UTF-8 with or without BOM, else GB18030 (which GBK is part of), as Excel
    on Chinese Windows saves it."""
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return data.decode("gb18030")
        except UnicodeDecodeError:
            raise NotASheet("the file is neither UTF-8 nor GBK text; save it as CSV") from None


def read_resident_csv(data):
    """Parse CSV text or bytes (headers in Chinese or English) into (line number, row dict) pairs."""
    reader = csv.DictReader(io.StringIO(decode_csv(data), newline=""))
    header = [RESIDENT_HEADERS.get(h.strip().lower(), h.strip().lower()) for h in (reader.fieldnames or [])]
    missing = {"name", "community"} - set(header)
    if missing or not {"phone", "unit"} & set(header):
        missing = sorted(missing | ({"phone"} if "phone" not in header and "unit" not in header else set()))
        names = {"name": "姓名 name", "phone": "手机号 phone", "community": "社区 community"}
        raise MissingColumns(f"the CSV header lacks: {', '.join(missing)}",
                             columns=", ".join(names[m] for m in missing))
    reader.fieldnames = header
    return [(reader.line_num, row) for row in reader]


def community_named(text):
    """The community a sheet names: its code, Chinese or English name."""
    text = " ".join((text or "").split())
    found = Community.get_or_none((Community.level == Community.COMMUNITY) & (
        (Community.code == text) | (Community.name_zh == text) | (Community.name_en == text)))
    if found is None or not text:
        raise UnknownCommunity(code=text)
    return found


def _already_there(community, name, e164, unit):
    """The resident a row describes, if they are registered already (so a second import of the
    same file changes nothing); DuplicateResident if the number is someone else's."""
    if e164:
        existing = Resident.get_or_none(Resident.phone == e164)
        if existing is None:
            return None
        if existing.community_id == community.id and existing.display_name == name:
            return existing
        raise DuplicateResident(phone=mask_phone(e164))
    return Resident.get_or_none((Resident.community == community.id) & (Resident.display_name == name)
                                & (Resident.unit_label == unit) & Resident.phone.is_null())


def import_residents(rows, *, dry_run=False, region="CN", staff=None, progress=None):
    """Register each row as a resident; a bad row is reported and never stops the others, and a
    resident already registered as the row says is left as is (importing a file twice changes
    nothing). A row needs a name and a community (code or name), and a phone number or a unit.

    Each row is its own transaction. A dry run checks every row, duplicates within the file
    included, inside one transaction that is rolled back.
    """
    report = ImportReport()
    with db.atomic() if dry_run else contextlib.nullcontext() as outer:
        for line, row in rows:
            if progress is not None:
                progress(1)
            try:
                if None in row:
                    raise TooManyFields("the row has more fields than the header")
                if any("\x00" in (value or "") for value in row.values()):
                    raise InvalidInput("the row contains a NUL character")
                community = community_named(row.get("community"))
                name, phone = _clean_name(row.get("name")), (row.get("phone") or "").strip()
                unit = _clean_label(row.get("unit") or "")
                if not phone and not unit:
                    raise NeedsPhoneOrUnit()
                language = LANGUAGE_WORDS.get((row.get("language") or "").strip().lower())
                if language is None:
                    raise UnknownLanguage(value=row.get("language"))
                e164 = normalise_phone(phone, region) if phone else None
                if staff is not None:
                    authorize(staff, community, Staff.COORDINATOR)
                if _already_there(community, name, e164, unit) is not None:
                    report.unchanged += 1
                    continue
                with db.atomic():
                    register_resident(community, name, phone=e164, language=language,
                                      grid_label=row.get("grid") or "", unit_label=unit, region=region, staff=staff)
                report.created += 1
            except CommunityError as exc:
                report.refuse(line, exc)
        if dry_run:
            outer.rollback()
    return report
