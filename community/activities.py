"""Activities and sign-ups: join, cancel, waitlist, check in."""

import datetime
import secrets

from peewee import JOIN, IntegrityError, fn

from ledger import db
from ledger.db import is_postgresql, prepared, together
from ledger.models import utcnow

from . import notices
from .audit import record
from .errors import (
    ActivityNotFound,
    ActivityNotOpen,
    ActivityStarted,
    InvalidInput,
    NotSignedUp,
    TooManyCheckInAttempts,
    WrongCheckInCode,
)
from .models import Activity, CheckInFailure, Signup, Staff
from .people import authorize, authorize_for, ensure_active
from .rules import current_rule

MAX_CAPACITY = 10_000


def _clean(text, limit, what, required=False):
    text = " ".join((text or "").split()) if what != "description" else (text or "").strip()
    if required and not text:
        raise InvalidInput(f"the {what} is required")
    if len(text) > limit or "\x00" in text:
        raise InvalidInput(f"the {what} is at most {limit} characters")
    return text


def _check_times(starts_at, ends_at):
    if starts_at is None or ends_at is None or ends_at <= starts_at:
        raise InvalidInput("the activity must end after it starts")


def _check_capacity(capacity):
    if isinstance(capacity, bool) or not isinstance(capacity, int) or not 1 <= capacity <= MAX_CAPACITY:
        raise InvalidInput(f"capacity is a whole number from 1 to {MAX_CAPACITY}")


def _free_code(prefix, column, start, digits):
    """The lowest code with `prefix` not used by an open activity."""
    used = {
        value
        for (value,) in Activity.select(column).where(Activity.status == Activity.OPEN).tuples()
    }
    number = start
    while f"{prefix}{number:0{digits}d}" in used:
        number += 1
    return f"{prefix}{number:0{digits}d}"


def create_activity(
    staff, community, *, title, category, starts_at, ends_at, capacity, description="", place="", title_en=""
):
    """Create an open activity with a short SMS code (A12) and a 4-digit check-in code."""
    authorize(staff, community, Staff.COORDINATOR)
    current_rule(category)
    _check_times(starts_at, ends_at)
    _check_capacity(capacity)
    fields = dict(
        title=_clean(title, 100, "title", required=True),
        title_en=_clean(title_en, 100, "title_en"),
        description=_clean(description, 2000, "description"),
        place=_clean(place, 100, "place"),
    )
    for _ in range(20):
        try:
            with db.atomic():
                activity = Activity.create(
                    community=community, category=category, starts_at=starts_at, ends_at=ends_at,
                    capacity=capacity, created_by=staff,
                    code=_free_code("A", Activity.code, 1, 1),
                    checkin_code=_free_code("", Activity.checkin_code, 1000 + secrets.randbelow(9000), 4),
                    **fields,
                )
                record(staff, "activity.create", f"activity:{activity.id}", {"code": activity.code},
                       community=community)
                return activity
        except IntegrityError:
            continue  # another coordinator took the same code at the same moment
    raise InvalidInput("could not allocate an activity code; try again")


def get_activity(activity_id):
    """Return the activity, or raise ActivityNotFound."""
    activity = Activity.by_id(activity_id)
    if activity is None:
        raise ActivityNotFound()
    return activity


def open_activity_by_code(code):
    """Return the open activity with this SMS code (any case), or raise ActivityNotFound."""
    found = _open_by_code((code or "").strip().upper(), Activity.OPEN)
    if not found:
        raise ActivityNotFound()
    return found[0]


# What every SMS sign-up reads, compiled once.
_open_by_code = prepared(lambda code, status: Activity.select().where(
    (Activity.code == code) & (Activity.status == status)))


def edit_activity(staff, activity, **changes):
    """Change an open activity; a larger capacity promotes people from the waitlist."""
    authorize(staff, activity.community, Staff.COORDINATOR)
    if activity.status != Activity.OPEN:
        raise ActivityNotOpen()
    values = {}
    for name, limit in (("title", 100), ("title_en", 100), ("description", 2000), ("place", 100)):
        if name in changes:
            values[name] = _clean(changes.pop(name), limit, name, required=name == "title")
    if "category" in changes:
        current_rule(changes["category"])
        values["category"] = changes.pop("category")
    starts_at = changes.pop("starts_at", activity.starts_at)
    ends_at = changes.pop("ends_at", activity.ends_at)
    _check_times(starts_at, ends_at)
    values.update(starts_at=starts_at, ends_at=ends_at)
    if "capacity" in changes:
        _check_capacity(changes["capacity"])
        if changes["capacity"] < Activity.get_by_id(activity.id).taken:
            raise InvalidInput("the capacity cannot be below the places already taken")
        values["capacity"] = changes.pop("capacity")
    if changes:
        raise InvalidInput(f"cannot change {', '.join(sorted(changes))}")
    with db.atomic():
        Activity.update(**values).where(Activity.id == activity.id).execute()
        _promote_waitlist(activity.id)
        record(staff, "activity.edit", f"activity:{activity.id}", sorted(values),
               community=activity.community)
    return get_activity(activity.id)


def cancel_activity(staff, activity, reason=""):
    """Cancel an open activity and tell everyone signed up or waiting."""
    authorize(staff, activity.community, Staff.COORDINATOR)
    reason = _clean(reason, 200, "reason")
    with db.atomic():
        changed = (
            Activity.update(status=Activity.CANCELLED)
            .where((Activity.id == activity.id) & (Activity.status == Activity.OPEN))
            .execute()
        )
        if not changed:
            raise ActivityNotOpen()
        affected = Signup.select().where(
            (Signup.activity == activity.id)
            & Signup.state.in_([Signup.SIGNED_UP, Signup.CHECKED_IN, Signup.WAITLISTED])
        )
        for signup in affected:
            notices.queue_notice(
                notices.ACTIVITY_CANCELLED, signup.resident_id, activity=activity.code,
                title=activity.title, reason=reason,
            )
        Signup.update(state=Signup.CANCELLED, reason=reason, updated_at=utcnow()).where(
            (Signup.activity == activity.id)
            & Signup.state.in_([Signup.SIGNED_UP, Signup.CHECKED_IN, Signup.WAITLISTED])
        ).execute()
        record(staff, "activity.cancel", f"activity:{activity.id}", {"reason": reason},
               community=activity.community)
    return get_activity(activity.id)


def close_activity(staff, activity):
    """Close an activity to new sign-ups (confirmations stay possible)."""
    authorize(staff, activity.community, Staff.COORDINATOR)
    with db.atomic():
        changed = Activity.update(status=Activity.CLOSED).where(
            (Activity.id == activity.id) & (Activity.status == Activity.OPEN)
        ).execute()
        if not changed:
            raise ActivityNotOpen()
        record(staff, "activity.close", f"activity:{activity.id}", community=activity.community)
    return get_activity(activity.id)


def reopen_activity(staff, activity):
    """Open a closed activity to sign-ups again."""
    authorize(staff, activity.community, Staff.COORDINATOR)
    with db.atomic():
        changed = Activity.update(status=Activity.OPEN).where(
            (Activity.id == activity.id) & (Activity.status == Activity.CLOSED)
        ).execute()
        if not changed:
            raise ActivityNotOpen()
        record(staff, "activity.reopen", f"activity:{activity.id}", community=activity.community)
    return get_activity(activity.id)


def activities_between(communities, start, end):
    """Activities (not cancelled) of these communities starting in [start, end), soonest first."""
    return list(Activity.select().where(
        Activity.community.in_([c.id for c in communities]) & (Activity.status != Activity.CANCELLED)
        & (Activity.starts_at >= start) & (Activity.starts_at < end)
    ).order_by(Activity.starts_at, Activity.id))


def upcoming_activities(community=None, now=None, limit=20):
    """Open activities that have not started, soonest first."""
    query = Activity.select().where(
        (Activity.status == Activity.OPEN) & (Activity.starts_at > (now or utcnow()))
    )
    if community is not None:
        query = query.where(Activity.community == community)
    return list(query.order_by(Activity.starts_at, Activity.id).limit(limit))


def activities_for(communities, limit=200):
    """Activities of these communities, newest start first (the staff list)."""
    ids = [c.id for c in communities]
    return list(
        Activity.select().where(Activity.community.in_(ids)).order_by(Activity.starts_at.desc()).limit(limit)
    )


def _check_joinable(activity, resident, now):
    ensure_active(resident)
    if activity.status != Activity.OPEN:
        raise ActivityNotOpen()
    if activity.starts_at <= now:
        raise ActivityStarted()
    if resident.community_id != activity.community_id:
        raise ActivityNotFound()


def _take_seat(activity_id):
    """Take a seat if one is free; the check and the write are one statement."""
    return _seat_taken(activity_id) == 1


_seat_taken = prepared(lambda activity: Activity.update(taken=Activity.taken + 1).where(
    (Activity.id == activity) & (Activity.taken < Activity.capacity)))
#: A newcomer takes a free seat unless someone is waiting (nobody jumps the queue): one statement.
_seat_for_newcomer = prepared(lambda activity, waiting: Activity.update(taken=Activity.taken + 1).where(
    (Activity.id == activity) & (Activity.taken < Activity.capacity)
    & ~fn.EXISTS(Signup.select(Signup.id).where((Signup.activity == activity) & (Signup.state == waiting)))))


def _activity_locked_with_signup(activity, resident):
    """The activity's status and the resident's sign-up (None before their first), reading
    which locks the activity row for the transaction on PostgreSQL (SQLite has one writer)."""
    query = (Activity.select(Activity.id, Activity.status, Signup)
             .join(Signup, JOIN.LEFT_OUTER, on=(Signup.activity == Activity.id) & (Signup.resident == resident),
                   attr="mine")
             .where(Activity.id == activity))
    return query.for_update(of=Activity) if is_postgresql() else query


_locked_with_signup = prepared(_activity_locked_with_signup)
_to_waitlist = prepared(lambda signup, waiting: Signup.update(state=waiting).where(Signup.id == signup))
_new_signup = prepared(lambda activity, resident, state, staff, now: Signup.insert(
    activity=activity, resident=resident, state=state, created_by=staff, created_at=now, updated_at=now))


def join(resident, activity, *, staff=None, now=None):
    """Sign a resident up (or onto the waitlist when full); joining twice changes nothing."""
    now = now or utcnow()
    _check_joinable(activity, resident, now)
    if staff is not None:
        authorize(staff, activity.community, Staff.COORDINATOR, Staff.GRID_WORKER)
        authorize_for(staff, resident)
    try:
        with db.atomic():
            return _join(resident, activity, staff, now)
    except IntegrityError:
        # The same resident joined from another channel at the same moment.
        return Signup.get((Signup.activity == activity.id) & (Signup.resident == resident.id))


def _join(resident, activity, staff, now):
    # Lock the activity row for this transaction, so that a join and a cancellation of the
    # activity happen one after the other, never interleaved; the resident's sign-up is read
    # with it.
    found = _locked_with_signup(activity.id, resident.id)
    if not found or found[0].status != Activity.OPEN:
        raise ActivityNotOpen()
    existing = vars(found[0]).pop("mine")
    if existing is not None and existing.state != Signup.CANCELLED:
        return existing
    if existing is None:
        # A newcomer is written as signed up with the seat taken for them, both at once; when
        # there was no seat, the row (no one else sees it yet) becomes a waitlist place.
        signup = Signup(activity=activity.id, resident=resident.id, state=Signup.SIGNED_UP,
                        created_by=staff and staff.id, created_at=now, updated_at=now)
        seated, signup.id = together(
            _seat_for_newcomer.bind(activity.id, Signup.WAITLISTED),
            _new_signup.bind(activity.id, resident.id, signup.state, signup.created_by_id, now))
        if not seated:
            signup.state = Signup.WAITLISTED
            _to_waitlist(signup.id, signup.state)
        state = signup.state
    else:
        state = Signup.SIGNED_UP if _seat_for_newcomer(activity.id, Signup.WAITLISTED) else Signup.WAITLISTED
        changed = (
            Signup.update(state=state, reason="", created_at=now, updated_at=now, created_by=staff)
            .where((Signup.id == existing.id) & (Signup.state == Signup.CANCELLED))
            .execute()
        )
        if not changed:
            raise IntegrityError("sign-up changed concurrently")
        signup = Signup.get_by_id(existing.id)
    if staff is not None:  # a resident's own sign-up is answered by its reply: one message, not two
        kind = notices.SIGNED_UP if state == Signup.SIGNED_UP else notices.WAITLISTED
        notices.queue_notice(kind, resident, activity=activity.code, title=activity.title,
                             starts_at=activity.starts_at.isoformat(timespec="minutes"), place=activity.place)
        record(staff, "signup.join", f"signup:{signup.id}", community=activity.community)
    return signup


def cancel(resident, activity, *, staff=None, now=None):
    """Cancel a sign-up before the start; the first person waiting takes the seat."""
    now = now or utcnow()
    if staff is not None:
        authorize(staff, activity.community, Staff.COORDINATOR)
    if activity.starts_at <= now:
        raise ActivityStarted()
    with db.atomic():
        signup = Signup.get_or_none((Signup.activity == activity.id) & (Signup.resident == resident.id))
        if signup is None or signup.state not in (Signup.SIGNED_UP, Signup.WAITLISTED):
            raise NotSignedUp()
        changed = (
            Signup.update(state=Signup.CANCELLED, updated_at=now)
            .where((Signup.id == signup.id) & (Signup.state == signup.state))
            .execute()
        )
        if not changed:
            raise NotSignedUp()
        if signup.state == Signup.SIGNED_UP:
            Activity.update(taken=Activity.taken - 1).where(Activity.id == activity.id).execute()
            _promote_waitlist(activity.id)
        if staff is not None:  # a resident's own cancellation is answered by its reply
            notices.queue_notice(notices.CANCELLED, resident, activity=activity.code, title=activity.title)
            record(staff, "signup.cancel", f"signup:{signup.id}", community=activity.community)
    return Signup.get_by_id(signup.id)


def _promote_waitlist(activity_id):
    """Seat people from the waitlist, first come first served, while seats are free."""
    while True:
        first = (
            Signup.select()
            .where((Signup.activity == activity_id) & (Signup.state == Signup.WAITLISTED))
            .order_by(Signup.created_at, Signup.id)
            .first()
        )
        if first is None or not _take_seat(activity_id):
            return
        Signup.update(state=Signup.SIGNED_UP, updated_at=utcnow()).where(Signup.id == first.id).execute()
        activity = Activity.get_by_id(activity_id)
        notices.queue_notice(notices.PROMOTED, first.resident_id, activity=activity.code,
                             title=activity.title,
                             starts_at=activity.starts_at.isoformat(timespec="minutes"),
                             place=activity.place)


#: Wrong check-in codes a resident may send in CHECK_IN_WINDOW before check-in is refused.
MAX_CHECK_IN_FAILURES = 5
CHECK_IN_WINDOW = datetime.timedelta(hours=12)


def signed_up_today(resident, now=None):
    """Tell whether the resident has a seat in an activity that can be checked into now."""
    now = now or utcnow()
    return (
        Signup.select()
        .join(Activity)
        .where(
            (Signup.resident == resident.id)
            & Signup.state.in_([Signup.SIGNED_UP, Signup.CHECKED_IN])
            & (Activity.status != Activity.CANCELLED)
            & (Activity.starts_at.between(now - CHECK_IN_WINDOW, now + CHECK_IN_WINDOW))
        )
        .exists()
    )


def check_in(resident, code, *, now=None):
    """Check a resident in with the activity's 4-digit code, on the day of the activity.

    Guessing is cut short: after a few wrong codes, check-in is refused for a while.
    """
    now = now or utcnow()
    ensure_active(resident)
    failures = CheckInFailure.select().where(
        (CheckInFailure.resident == resident.id) & (CheckInFailure.created_at > now - CHECK_IN_WINDOW)
    ).count()
    if failures >= MAX_CHECK_IN_FAILURES:
        raise TooManyCheckInAttempts()
    code = "".join((code or "").split())
    signup = (
        Signup.select(Signup, Activity)
        .join(Activity)
        .where(
            (Signup.resident == resident.id)
            & (Activity.checkin_code == code)
            & (Activity.status != Activity.CANCELLED)
            & Signup.state.in_([Signup.SIGNED_UP, Signup.CHECKED_IN])
        )
        .order_by(Activity.starts_at.desc())
        .first()
    )
    if signup is None or abs(signup.activity.starts_at - now) > CHECK_IN_WINDOW:
        CheckInFailure.create(resident=resident.id, created_at=now)
        raise WrongCheckInCode()
    Signup.update(state=Signup.CHECKED_IN, updated_at=now).where(
        (Signup.id == signup.id) & (Signup.state == Signup.SIGNED_UP)
    ).execute()
    return Signup.get_by_id(signup.id)


ROSTER_ORDER = (
    Signup.CHECKED_IN, Signup.SIGNED_UP, Signup.CONFIRMED, Signup.REVERSED, Signup.WAITLISTED,
    Signup.REJECTED, Signup.NO_SHOW, Signup.CANCELLED,
)


def roster(activity):
    """Everyone on an activity's list, seated first, then the waitlist in order."""
    signups = Signup.select().where(Signup.activity == activity.id).order_by(Signup.created_at, Signup.id)
    return sorted(signups, key=lambda s: ROSTER_ORDER.index(s.state))


def signups_of(resident, limit=20):
    """A resident's sign-ups for activities that are still to come or awaiting confirmation."""
    return list(
        Signup.select(Signup, Activity)
        .join(Activity)
        .where(
            (Signup.resident == resident.id)
            & Signup.state.in_([Signup.SIGNED_UP, Signup.WAITLISTED, Signup.CHECKED_IN])
        )
        .order_by(Activity.starts_at)
        .limit(limit)
    )
