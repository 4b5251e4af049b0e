"""Confirmation turns a sign-up into points: one award per sign-up, whoever clicks how often."""

from peewee import JOIN, IntegrityError

import ledger
from ledger import Transfer, db
from ledger.models import utcnow

from . import activities, notices
from .audit import record
from .errors import (
    ActivityNotOpen,
    AlreadyConfirmedByYou,
    CommunityError,
    DecisionNeeded,
    InvalidInput,
    NotConfirmed,
    NotPending,
    NotStartedYet,
    SelfConfirmation,
)
from .models import Activity, Confirmation, Resident, Signup, Staff
from .people import authorize, authorize_for, close_resident, ensure_active
from .rules import current_rule


def _community_of(signup):
    return signup.activity.community if signup.activity_id else signup.resident.community


def _category_of(signup):
    return signup.activity.category if signup.activity_id else signup.category


def _reason(text, required):
    text = " ".join((text or "").split())
    if required and not text:
        raise InvalidInput("a reason is required")
    if len(text) > 200 or not text.isprintable():
        raise InvalidInput("the reason is at most 200 printable characters")
    return text


def report_deed(staff, resident, category, note):
    """Record community work done outside a scheduled activity (a rescue reported afterwards).

    It then takes the same path as a sign-up: `confirm_participation` awards it.
    """
    authorize_for(staff, resident)  # coordinators, and a grid worker for their grid's residents
    ensure_active(resident)
    current_rule(category)
    note = _reason(note, required=True)
    with db.atomic():
        signup = Signup.create(
            activity=None, resident=resident, category=category, note=note,
            state=Signup.SIGNED_UP, created_by=staff,
        )
        record(staff, "deed.report", f"signup:{signup.id}", {"category": category, "note": note},
               community=resident.community)
    return signup


def record_deed(staff, resident, category, note):
    """Report a deed and give this staff member's confirmation in one transaction.

    A rule that needs two confirmations leaves it pending for a second staff member; a grid
    worker's report waits for a coordinator.
    """
    with db.atomic():
        deed = report_deed(staff, resident, category, note)
        if staff.role == Staff.GRID_WORKER:
            return deed  # reported: a coordinator confirms it
        return confirm_participation(staff, deed)


def confirm_participation(staff, signup):
    """Confirm that a resident took part; post the award once enough staff have confirmed.

    Returns the sign-up. Confirming again, or two coordinators at once, posts exactly one award:
    the ledger's idempotency key is the sign-up.
    """
    signup = Signup.get_by_id(signup.id if isinstance(signup, Signup) else signup)
    authorize(staff, _community_of(signup), Staff.COORDINATOR)
    if staff.resident_id is not None and staff.resident_id == signup.resident_id:
        raise SelfConfirmation()
    if signup.state == Signup.CONFIRMED:
        return signup
    if signup.state not in Signup.PENDING:
        raise NotPending()
    if signup.activity_id and signup.activity.starts_at > utcnow():
        raise NotStartedYet()  # nobody has taken part in what has not begun
    ensure_active(signup.resident)
    rule = current_rule(_category_of(signup))
    try:
        with db.atomic():
            # Lock the sign-up first: two coordinators confirming at once then count each
            # other's confirmation, so the second one always sees two and posts the award.
            locked = (
                Signup.update(updated_at=Signup.updated_at)
                .where((Signup.id == signup.id) & Signup.state.in_(Signup.PENDING))
                .execute()
            )
            if not locked:
                fresh = Signup.get_by_id(signup.id)
                if fresh.state == Signup.CONFIRMED:
                    return fresh
                raise NotPending()
            Confirmation.create(signup=signup, staff=staff)
            record(staff, "signup.confirm", f"signup:{signup.id}", community=_community_of(signup))
            count = Confirmation.select().where(Confirmation.signup == signup.id).count()
            if count >= rule.confirmations_required:
                _award(staff, signup, rule)
    except IntegrityError:
        fresh = Signup.get_by_id(signup.id)
        if fresh.state == Signup.CONFIRMED:
            return fresh  # a concurrent click by the same staff member already awarded it
        raise AlreadyConfirmedByYou() from None
    return Signup.get_by_id(signup.id)


def _award(staff, signup, rule):
    resident = signup.resident
    community = _community_of(signup)
    title = signup.activity.title if signup.activity_id else signup.note
    try:
        transfer = ledger.transfer(
            community.issuer_id, resident.account_id, rule.points,
            kind=Transfer.AWARD,
            memo=f"{rule.category} v{rule.version}: {title}"[:500],
            actor=f"staff:{staff.id}",
            idempotency_key=f"award:signup:{signup.id}",
        )
    except ledger.IdempotencyConflict:
        return  # another coordinator's confirmation posted this award a moment ago
    changed = (
        Signup.update(state=Signup.CONFIRMED, transfer=transfer.id, rule=rule.id, updated_at=utcnow())
        .where((Signup.id == signup.id) & Signup.state.in_(Signup.PENDING))
        .execute()
    )
    if not changed:
        # Another transaction confirmed it in between: the ledger replayed the same transfer.
        return
    notices.queue_notice(
        notices.CONFIRMED, resident, dedupe_key=f"confirmed:{signup.id}",
        title=title, category=rule.category, points=rule.points,
        balance=ledger.balance(resident.account_id), transfer=transfer.id,
    )


def awaiting_second_confirmation(signup):
    """Tell how many confirmations a pending sign-up has and needs: (have, need)."""
    rule = current_rule(_category_of(signup))
    have = Confirmation.select().where(Confirmation.signup == signup.id).count()
    return have, rule.confirmations_required


def reject_participation(staff, signup, reason):
    """Reject a sign-up with a reason the resident will be told."""
    return _decide(staff, signup, Signup.REJECTED, _reason(reason, required=True))


def mark_no_show(staff, signup):
    """Record that a signed-up resident did not come."""
    return _decide(staff, signup, Signup.NO_SHOW, "")


def record_attendance(staff, activity, residents, now=None):
    """Confirm that these residents came to an activity that has started: walk-ins without a
    sign-up, waitlisted ones and those marked absent by mistake, several at once, each on its own.

    Returns (confirmed sign-ups, [(resident, CommunityError)] for those refused). Recording the
    same resident again awards nothing more.
    """
    authorize(staff, activity.community, Staff.COORDINATOR)
    if activity.starts_at > (now or utcnow()):
        raise NotStartedYet()
    if activity.status == Activity.CANCELLED:
        raise ActivityNotOpen()
    confirmed, refused = [], []
    for resident in residents:
        try:
            with db.atomic():
                confirmed.append(confirm_participation(staff, _came(staff, activity, resident)))
        except CommunityError as exc:
            refused.append((resident, exc))
    return confirmed, refused


def _came(staff, activity, resident):
    """The resident's sign-up for the activity, made or put back in place (a seat is taken even
    beyond the capacity: they are there)."""
    if resident.community_id != activity.community_id:
        authorize(staff, resident.community, Staff.COORDINATOR)
    ensure_active(resident)
    signup = Signup.get_or_none((Signup.activity == activity.id) & (Signup.resident == resident.id))
    if signup is None:
        try:
            with db.atomic():
                signup = Signup.create(activity=activity, resident=resident, state=Signup.SIGNED_UP,
                                       created_by=staff)
        except IntegrityError:  # signed up from another channel at the same moment
            return Signup.get((Signup.activity == activity.id) & (Signup.resident == resident.id))
        Activity.update(taken=Activity.taken + 1).where(Activity.id == activity.id).execute()
        record(staff, "signup.walk_in", f"signup:{signup.id}", community=activity.community)
        return signup
    if signup.state in Signup.ABSENT:
        seated = signup.state == Signup.NO_SHOW  # a no-show kept their seat
        back = Signup.update(state=Signup.SIGNED_UP, updated_at=utcnow()).where(
            (Signup.id == signup.id) & (Signup.state == signup.state)).execute()
        if back and not seated:
            Activity.update(taken=Activity.taken + 1).where(Activity.id == activity.id).execute()
        record(staff, "signup.came", f"signup:{signup.id}", {"was": signup.state}, community=activity.community)
    return Signup.get_by_id(signup.id)


def decide_roster(staff, activity, confirm, reject):
    """Confirm the sign-ups in `confirm` (ids) and reject those in `reject` (id → reason) among an
    activity's pending sign-ups, each on its own; a rejection wins over a tick.

    Returns (confirmed count, rejected count, [(sign-up, CommunityError)] for those refused).
    """
    confirmed = rejected = 0
    refused = []
    for signup in Signup.select().where((Signup.activity == activity.id) & Signup.state.in_(Signup.PENDING)):
        reason = (reject.get(signup.id) or "").strip()
        try:
            if reason:
                reject_participation(staff, signup, reason)
                rejected += 1
            elif signup.id in confirm:
                confirm_participation(staff, signup)
                confirmed += 1
        except CommunityError as exc:
            refused.append((signup, exc))
    return confirmed, rejected, refused


def _decide(staff, signup, state, reason):
    signup = Signup.get_by_id(signup.id if isinstance(signup, Signup) else signup)
    authorize(staff, _community_of(signup), Staff.COORDINATOR)
    with db.atomic():
        changed = (
            Signup.update(state=state, reason=reason, updated_at=utcnow())
            .where((Signup.id == signup.id) & Signup.state.in_(Signup.PENDING))
            .execute()
        )
        if not changed:
            raise NotPending()
        record(staff, "signup.rejected" if state == Signup.REJECTED else "signup.no_show", f"signup:{signup.id}",
               {"reason": reason}, community=_community_of(signup))
        if state == Signup.REJECTED:
            title = signup.activity.title if signup.activity_id else signup.note
            notices.queue_notice(notices.REJECTED, signup.resident_id, title=title, reason=reason)
    return Signup.get_by_id(signup.id)


def reverse_award(staff, signup, reason):
    """Take back a confirmed award with a reason (a ledger reversal); the resident is told."""
    signup = Signup.get_by_id(signup.id if isinstance(signup, Signup) else signup)
    authorize(staff, _community_of(signup), Staff.COORDINATOR)
    reason = _reason(reason, required=True)
    if signup.state != Signup.CONFIRMED or signup.transfer_id is None:
        raise NotConfirmed()
    with db.atomic():
        reversal = ledger.reverse(signup.transfer_id, reason, f"staff:{staff.id}")
        changed = (
            Signup.update(state=Signup.REVERSED, reason=reason, updated_at=utcnow())
            .where((Signup.id == signup.id) & (Signup.state == Signup.CONFIRMED))
            .execute()
        )
        if changed:
            record(staff, "award.reverse", f"signup:{signup.id}",
                   {"reason": reason, "transfer": reversal.id}, community=_community_of(signup))
            notices.queue_notice(
                notices.REVERSED, signup.resident_id, dedupe_key=f"reversed:{signup.id}",
                reason=reason, points=signup.rule.points if signup.rule_id else 0,
                balance=ledger.balance(signup.resident.account_id),
                title=signup.activity.title if signup.activity_id else signup.note,
            )
    return Signup.get_by_id(signup.id)


def pending_for(communities, limit=200, now=None):
    """Sign-ups awaiting a decision in these communities: activities that have started, and deeds."""
    ids = [c.id for c in communities]
    now = now or utcnow()
    return list(
        Signup.select(Signup)
        .join(Resident, on=(Signup.resident == Resident.id))
        .switch(Signup)
        .join(Activity, join_type=JOIN.LEFT_OUTER, on=(Signup.activity == Activity.id))
        .where(
            Signup.state.in_(Signup.PENDING)
            & Resident.community.in_(ids)
            & (Signup.activity.is_null() | (Activity.starts_at <= now))
        )
        .order_by(Signup.created_at)
        .limit(limit)
    )


RETURN_POINTS, KEEP_POINTS = "return", "keep"


def open_signups(resident):
    """The resident's sign-ups still in play: places in activities to come, and participation
    waiting for a decision."""
    return list(
        Signup.select().join(Activity).where(
            (Signup.resident == resident.id)
            & Signup.state.in_((Signup.SIGNED_UP, Signup.WAITLISTED, Signup.CHECKED_IN))
            & (Activity.status != Activity.CANCELLED)
        )
    )


def close_account(staff, resident, *, points=None, cancel_signups=False, now=None):
    """Close a resident's account once each open matter has a decision (else DecisionNeeded):
    a balance is returned to the community (`points="return"`, an adjustment in the ledger) or
    kept on the closed account (`"keep"`, visible, never spendable); open sign-ups are given up
    (`cancel_signups`): places to come are freed for the waitlist, participation not yet
    confirmed is turned down with a reason the resident is told."""
    authorize(staff, resident.community, Staff.COORDINATOR)
    now = now or utcnow()
    balance = ledger.balance(resident.account_id)
    signups = open_signups(resident)
    if (balance > 0 and points not in (RETURN_POINTS, KEEP_POINTS)) or (signups and not cancel_signups):
        raise DecisionNeeded(balance=balance, signups=len(signups))
    with db.atomic():
        for signup in signups:
            if signup.activity.starts_at > now:
                activities.cancel(resident, signup.activity, staff=staff, now=now)
            else:
                _decide(staff, signup, Signup.REJECTED, "账户已注销 / account closed")
        if balance > 0 and points == RETURN_POINTS:
            ledger.transfer(resident.account_id, resident.community.issuer_id, balance, kind=Transfer.ADJUSTMENT,
                            memo="账户注销，积分退回社区 / account closed, points returned", actor=f"staff:{staff.id}",
                            idempotency_key=f"close:resident:{resident.id}")
        return close_resident(staff, resident)
