"""The five-level grid of a district, as the city grid centre codes it: district → street or
town → community or village → grid → unit (区—镇街—村居—网格—单元). Points accounts (issuer,
shop) belong to communities; grids and units belong to one community."""

import csv
import io
import re

from peewee import IntegrityError

from ledger import db
from ledger.models import Entry

from .audit import record
from .errors import InvalidInput, PlaceInUse, UnknownCommunity
from .models import Community, Resident, Staff
from .people import authorize, create_community, decode_csv

LEVELS = ("district", "street", "community", "grid", "unit")
#: The level a place's parent has.
PARENT = {"street": "district", "community": "street", "grid": "community", "unit": "grid"}
#: What a level is called in a CSV or on the command line, in Chinese or English.
LEVEL_WORDS = {
    "district": "district", "区": "district", "县": "district", "区县": "district",
    "street": "street", "town": "street", "镇街": "street", "街道": "street", "镇": "street", "乡镇": "street",
    "community": "community", "village": "community", "村居": "community", "社区": "community", "村": "community",
    "grid": "grid", "网格": "grid",
    "unit": "unit", "单元": "unit", "楼栋": "unit",
}
#: CSV headers (the grid centre's export, or a sheet typed in Chinese).
HEADERS = {
    "code": "code", "编码": "code", "代码": "code", "编号": "code",
    "name": "name", "名称": "name", "名字": "name",
    "level": "level", "层级": "level", "级别": "level",
    "parent": "parent", "上级": "parent", "上级编码": "parent", "parent code": "parent",
    "name_en": "name_en", "英文名": "name_en", "英文名称": "name_en",
    "phone": "phone", "电话": "phone", "办公电话": "phone",
}
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,19}")


def level_of(word):
    level = LEVEL_WORDS.get((word or "").strip().lower())
    if level is None:
        raise InvalidInput(f"a level is one of {', '.join(LEVELS)}, not {word!r}")
    return level


def _clean(text, limit, what, required=False):
    text = " ".join((text or "").split())
    if required and not text:
        raise InvalidInput(f"the {what} is missing")
    if len(text) > limit or not text.isprintable():
        raise InvalidInput(f"the {what} is at most {limit} printable characters")
    return text


def _parent_for(level, parent_code):
    if not parent_code:
        if level in ("grid", "unit"):
            raise InvalidInput(f"a {level} belongs to a {PARENT[level]}: give its parent code")
        return None
    parent = Community.get_or_none(Community.code == parent_code.strip())
    if parent is None:
        raise UnknownCommunity(code=parent_code)
    if level == "district" or parent.level != PARENT[level]:
        raise InvalidInput(f"a {level} sits under a {PARENT.get(level, 'nothing')}, not under a {parent.level}")
    return parent


def add_place(code, name_zh, level, parent_code=None, name_en="", phone="", staff=None):
    """Add one place of the grid; its code is unique. `staff` (an admin) is recorded; None is the
    operator at the command line."""
    if staff is not None:
        authorize(staff, None, Staff.ADMIN)
    code = (code or "").strip()
    if not _CODE.fullmatch(code):
        raise InvalidInput(f"a code is 1 to 20 letters, digits, - or _, not {code!r}")
    level = level_of(level)
    name_zh = _clean(name_zh, 100, "name", required=True)
    name_en = _clean(name_en, 100, "English name")
    phone = _clean(phone, 32, "phone number")
    parent = _parent_for(level, parent_code)
    if Community.select().where(Community.code == code).exists():
        raise InvalidInput(f"the code {code} is taken")
    try:
        with db.atomic():
            place = create_community(code, name_zh, name_en, level=level, parent=parent)
            if phone:
                Community.update(phone=phone).where(Community.id == place.id).execute()
                place.phone = phone
            record(staff, "place.add", f"place:{code}", {"name": name_zh})
            return place
    except IntegrityError:
        raise InvalidInput(f"the code {code} is taken") from None


def change_place(code, *, name_zh=None, name_en=None, phone=None, staff=None):
    """Rename a place or set its office phone; what is None stays."""
    if staff is not None:
        authorize(staff, None, Staff.ADMIN)
    place = Community.get_or_none(Community.code == (code or "").strip())
    if place is None:
        raise UnknownCommunity(code=code)
    values = {}
    if name_zh is not None:
        values["name_zh"] = _clean(name_zh, 100, "name", required=True)
    if name_en is not None:
        values["name_en"] = _clean(name_en, 100, "English name")
    if phone is not None:
        values["phone"] = _clean(phone, 32, "phone number")
    if values:
        with db.atomic():
            Community.update(**values).where(Community.id == place.id).execute()
            record(staff, "place.change", f"place:{place.code}", {"name": values.get("name_zh", place.name_zh)})
    return Community.get_by_id(place.id)


def _place(code):
    place = Community.get_or_none(Community.code == (code or "").strip())
    if place is None:
        raise UnknownCommunity(code=code)
    return place


def move_place(staff, code, parent_code):
    """Put a place under another parent of the level above; balances and residents stay as they are."""
    if staff is not None:  # None: the operator at the command line
        authorize(staff, None, Staff.ADMIN)
    place = _place(code)
    parent = _parent_for(place.level, parent_code)
    node = parent
    while node is not None:  # never under itself
        if node.id == place.id:
            raise InvalidInput(f"{place.code} cannot sit under itself")
        node = node.parent
    with db.atomic():
        Community.update(parent=parent).where(Community.id == place.id).execute()
        record(staff, "place.move", f"place:{place.code}", {"to": parent.code if parent else ""})
    return Community.get_by_id(place.id)


def _below(place):
    """The place and every place under it."""
    found, todo = [place], [place]
    while todo:
        children = list(Community.select().where(Community.parent == todo.pop().id))
        found += children
        todo += children
    return found


def archive_place(staff, code, archived=True):
    """Archive a place nobody lives in and no points went through (never delete), or bring it back."""
    if staff is not None:  # None: the operator at the command line
        authorize(staff, None, Staff.ADMIN)
    place = _place(code)
    if archived:
        ids = [p.id for p in _below(place)]
        if Resident.select().where(Resident.community.in_(ids)).exists():
            raise PlaceInUse(code=place.code)
        issuers = [p.issuer_id for p in _below(place) if p.issuer_id]
        if issuers and Entry.select().where(Entry.account.in_(issuers)).exists():
            raise PlaceInUse(code=place.code)
    with db.atomic():
        Community.update(archived=archived).where(Community.id == place.id).execute()
        record(staff, "place.archive" if archived else "place.restore", f"place:{place.code}", {})
    return Community.get_by_id(place.id)


def grids_of(communities):
    """The grids (not archived) of these communities, by code."""
    ids = [c.id for c in communities]
    if not ids:
        return []
    return list(Community.select().where((Community.level == Community.GRID) & Community.parent.in_(ids)
                                         & ~Community.archived).order_by(Community.code))


def tree():
    """Every place as (depth, place), each under its parent, by code."""
    places = list(Community.select().order_by(Community.code))
    children = {}
    for place in places:
        children.setdefault(place.parent_id, []).append(place)
    out = []

    def walk(parent_id, depth):
        for place in children.get(parent_id, []):
            out.append((depth, place))
            walk(place.id, depth + 1)

    walk(None, 0)
    return out


def read_places_csv(data):
    """(line number, row) pairs of a places CSV; headers in Chinese or English."""
    reader = csv.DictReader(io.StringIO(decode_csv(data), newline=""))
    header = [HEADERS.get((h or "").strip().lower(), (h or "").strip().lower()) for h in (reader.fieldnames or [])]
    missing = {"code", "name", "level"} - set(header)
    if missing:
        raise InvalidInput(f"the CSV header lacks: {', '.join(sorted(missing))} (编码, 名称, 层级)")
    reader.fieldnames = header
    return [(reader.line_num, row) for row in reader]


def import_places(rows):
    """Add what is new and rename what exists, parents before children; running it again changes
    nothing. Each row is its own transaction. Returns (added, renamed, unchanged, [(line, error)])."""
    added = renamed = unchanged = 0
    problems = []
    ordered = sorted(rows, key=lambda pair: LEVELS.index(LEVEL_WORDS.get((pair[1].get("level") or "").strip().lower(),
                                                                             "unit")))
    for line, row in ordered:
        try:
            if None in row:
                raise InvalidInput("the row has more fields than the header")
            code = (row.get("code") or "").strip()
            existing = Community.get_or_none(Community.code == code)
            if existing is None:
                add_place(code, row.get("name"), row.get("level"), row.get("parent"), row.get("name_en") or "",
                          row.get("phone") or "")
                added += 1
                continue
            if existing.level != level_of(row.get("level")):
                raise InvalidInput(f"{code} is a {existing.level} already, not a {level_of(row.get('level'))}")
            changes = {"name_zh": row.get("name")}
            if row.get("name_en"):
                changes["name_en"] = row["name_en"]
            if row.get("phone"):
                changes["phone"] = row["phone"]
            after = change_place(code, **changes)
            same = (after.name_zh, after.name_en, after.phone) == (existing.name_zh, existing.name_en, existing.phone)
            unchanged += same
            renamed += not same
        except (InvalidInput, UnknownCommunity) as exc:
            values = ", ".join(str(v) for v in exc.details.values())
            problems.append((line, f"{exc} ({values})" if values else str(exc)))
    return added, renamed, unchanged, sorted(problems)
