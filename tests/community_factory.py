"""Build a district, communities, staff and residents for the community tests.

Everything goes through the real services (community.people, community.rules, community.activities),
so what the tests see is what production code would have written.
"""

import datetime
import io
import itertools
from dataclasses import dataclass

from PIL import Image

from community import activities, notices, people, rules
from community.models import Activity, AuditEvent, Community, Notice, Staff
from ledger.models import utcnow

PASSWORD = "correct horse battery"
_serial = itertools.count(1)


@dataclass
class Place:
    """A district with one street holding two communities, and a second street with one."""

    district: Community
    street: Community
    north: Community
    south: Community
    other_street: Community
    east: Community


def build_place(*, with_rules=True):
    """Create the district tree (and the default point rules)."""
    if with_rules:
        rules.install_default_rules()
    district = people.create_community("D1", "城区", "Old Town", level=Community.DISTRICT)
    street = people.create_community("ST1", "河街道", "River Street", level=Community.STREET, parent=district)
    north = people.create_community("N1", "北社区", "North", parent=street)
    south = people.create_community("S1", "南社区", "South", parent=street)
    other_street = people.create_community(
        "ST2", "山街道", "Hill Street", level=Community.STREET, parent=district
    )
    east = people.create_community("E1", "东社区", "East", parent=other_street)
    return Place(district, street, north, south, other_street, east)


def staff(role, community=None, *, resident=None, username=None, password=PASSWORD):
    """Create a staff user with a fresh username."""
    username = username or f"{role}{next(_serial)}"
    return people.create_staff(username, password, role, community=community, resident=resident)


def admin():
    return staff(Staff.ADMIN)


def coordinator(community, **kwargs):
    return staff(Staff.COORDINATOR, community, **kwargs)


def clerk(community, **kwargs):
    return staff(Staff.CLERK, community, **kwargs)


def phone():
    """A fresh, valid Chinese mobile number as people write it."""
    return f"139 {next(_serial):04d} {next(_serial):04d}"


def resident(community, name=None, *, phone_number=None, **kwargs):
    """Register a resident (with a fresh phone number unless one is given)."""
    return people.register_resident(
        community, name or f"Resident {next(_serial)}", phone=phone_number or phone(), **kwargs
    )


def begin(activity):
    """Move an activity's start into the past (it is under way): residents join before it starts,
    staff confirm who took part after."""
    Activity.update(starts_at=future(days=-1), ends_at=future(days=-1, hours=2)).where(
        Activity.id == activity.id).execute()
    return Activity.get_by_id(activity.id)


def residents(community, count):
    return [resident(community) for _ in range(count)]


def photo_bytes(size=(64, 48), kind="JPEG", colour=(200, 80, 40)):
    """A small picture, as a phone's camera app would send it."""
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, kind)
    return out.getvalue()


def future(days=2, hours=0):
    """A whole-second UTC time `days` from now."""
    return utcnow().replace(microsecond=0) + datetime.timedelta(days=days, hours=hours)


def activity(staff_member, community, *, capacity=5, category="volunteering", starts_at=None,
             hours=2, title=None, **kwargs):
    """Create an open activity starting in two days (unless told otherwise)."""
    starts_at = starts_at or future()
    return activities.create_activity(
        staff_member, community,
        title=title or f"Activity {next(_serial)}",
        category=category,
        starts_at=starts_at,
        ends_at=starts_at + datetime.timedelta(hours=hours),
        capacity=capacity,
        **kwargs,
    )


def notices_of(resident_, kind=None):
    """A resident's notices as (kind, params) pairs, oldest first."""
    query = Notice.select().where(Notice.resident == resident_.id).order_by(Notice.id)
    if kind is not None:
        query = query.where(Notice.kind == kind)
    return [(n.kind, notices.notice_params(n)) for n in query]


def kinds_of(resident_):
    return [kind for kind, _ in notices_of(resident_)]


def audit_actions(staff_member=None):
    """Audit events as (action, staff id, community id, target), oldest first."""
    query = AuditEvent.select().order_by(AuditEvent.id)
    if staff_member is not None:
        query = query.where(AuditEvent.staff == staff_member.id)
    return [(e.action, e.staff_id, e.community_id, e.target) for e in query]
