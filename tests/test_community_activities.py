"""Activities and sign-ups: codes, editing, cancelling, joining, the waitlist, check-in, reminders."""

import datetime
import json

import community_factory as f
import pytest

from community import activities, errors, notices, people
from community.models import Activity, AuditEvent, Notice, Signup

HOUR = datetime.timedelta(hours=1)


def states(activity):
    """Each resident's sign-up state, in sign-up order."""
    query = Signup.select().where(Signup.activity == activity.id).order_by(Signup.created_at, Signup.id)
    return {s.resident_id: s.state for s in query}


def taken(activity):
    return Activity.get_by_id(activity.id).taken


def assert_seats_add_up(activity):
    """The seat counter matches the seated sign-ups and never passes the capacity."""
    fresh = Activity.get_by_id(activity.id)
    seated = Signup.select().where(
        (Signup.activity == activity.id) & Signup.state.in_(Signup.SEATED)
    ).count()
    assert fresh.taken == seated <= fresh.capacity


# --- creating, codes ---------------------------------------------------------------------


def test_create_gives_short_unique_codes_and_a_check_in_code(place, boss):
    first = f.activity(boss, place.north, title="Park clean-up", place="North gate", capacity=8)
    second = f.activity(boss, place.north)
    third = f.activity(f.coordinator(place.south), place.south)
    assert [first.code, second.code, third.code] == ["A1", "A2", "A3"]
    codes = [a.checkin_code for a in (first, second, third)]
    assert all(len(c) == 4 and c.isdigit() for c in codes)
    assert len(set(codes)) == 3
    stored = Activity.get_by_id(first.id)
    assert (stored.title, stored.place, stored.capacity, stored.taken, stored.status) == (
        "Park clean-up", "North gate", 8, 0, Activity.OPEN
    )
    assert (stored.community_id, stored.created_by_id) == (place.north.id, boss.id)
    assert activities.open_activity_by_code(" a2 ").id == second.id
    with pytest.raises(errors.ActivityNotFound):
        activities.open_activity_by_code("A9")


def test_a_cancelled_activitys_code_can_be_reused(place, boss):
    first = f.activity(boss, place.north)
    second = f.activity(boss, place.north)
    activities.cancel_activity(boss, first, "rain")
    again = f.activity(boss, place.north)
    assert (first.code, second.code, again.code) == ("A1", "A2", "A1")
    assert activities.open_activity_by_code("A1").id == again.id
    # The cancelled one keeps its code in the history.
    assert Activity.get_by_id(first.id).code == "A1"


def test_a_closed_activity_frees_its_code_too(place, boss):
    first = f.activity(boss, place.north)
    activities.close_activity(boss, first)
    assert Activity.get_by_id(first.id).status == Activity.CLOSED
    assert f.activity(boss, place.north).code == "A1"


@pytest.mark.parametrize(
    "changes, error",
    [
        ({"category": "juggling"}, errors.UnknownCategory),
        ({"capacity": 0}, errors.InvalidInput),
        ({"capacity": 10_001}, errors.InvalidInput),
        ({"capacity": True}, errors.InvalidInput),
        ({"capacity": "5"}, errors.InvalidInput),
        ({"title": "   "}, errors.InvalidInput),
        ({"title": "x" * 101}, errors.InvalidInput),
        ({"hours": 0}, errors.InvalidInput),
        ({"hours": -1}, errors.InvalidInput),
    ],
)
def test_create_refuses_bad_details(place, boss, changes, error):
    with pytest.raises(error):
        f.activity(boss, place.north, **{"title": "Fine", **changes})
    assert Activity.select().count() == 0
    assert AuditEvent.select().count() == 0


def test_create_is_audited(place, boss):
    activity = f.activity(boss, place.north)
    event = AuditEvent.get(AuditEvent.action == "activity.create")
    assert (event.staff_id, event.community_id, event.target) == (
        boss.id, place.north.id, f"activity:{activity.id}"
    )
    assert json.loads(event.detail) == {"code": "A1"}


def test_upcoming_lists_open_activities_not_yet_started(place, boss):
    later = f.activity(boss, place.north, starts_at=f.future(days=3))
    sooner = f.activity(boss, place.north, starts_at=f.future(days=1))
    cancelled = f.activity(boss, place.north)
    activities.cancel_activity(boss, cancelled)
    f.activity(f.coordinator(place.south), place.south)
    assert [a.id for a in activities.upcoming_activities(place.north)] == [sooner.id, later.id]
    assert activities.upcoming_activities(place.north, now=f.future(days=2)) == [later]


# --- editing -----------------------------------------------------------------------------


def test_a_larger_capacity_promotes_the_waitlist_in_order(place, boss):
    activity = f.activity(boss, place.north, capacity=2)
    people_ = f.residents(place.north, 5)
    for resident in people_:
        activities.join(resident, activity)
    assert list(states(activity).values()) == ["signed_up"] * 2 + ["waitlisted"] * 3
    edited = activities.edit_activity(boss, activity, capacity=4, title="Bigger")
    assert (edited.capacity, edited.taken, edited.title) == (4, 4, "Bigger")
    assert list(states(activity).values()) == ["signed_up"] * 4 + ["waitlisted"]
    # Their own sign-ups were answered by the reply; the promotion is news to them.
    assert f.kinds_of(people_[2]) == ["promoted"]
    assert f.kinds_of(people_[3]) == ["promoted"]
    assert f.kinds_of(people_[4]) == []
    _, params = f.notices_of(people_[2], "promoted")[0]
    assert params["activity"] == "A1" and params["title"] == "Bigger"
    assert_seats_add_up(activity)


def test_edit_changes_only_what_it_may(place, boss):
    activity = f.activity(boss, place.north)
    starts = f.future(days=5)
    edited = activities.edit_activity(
        boss, activity, starts_at=starts, ends_at=starts + HOUR, place="Hall", category="mediation"
    )
    assert (edited.starts_at, edited.place, edited.category) == (starts, "Hall", "mediation")
    with pytest.raises(errors.InvalidInput):
        activities.edit_activity(boss, edited, code="Z9")
    with pytest.raises(errors.InvalidInput):
        activities.edit_activity(boss, edited, ends_at=starts - HOUR)
    with pytest.raises(errors.NotPermitted):
        activities.edit_activity(f.coordinator(place.south), edited, title="Mine now")
    assert Activity.get_by_id(activity.id).code == "A1"
    actions = [e.action for e in AuditEvent.select().order_by(AuditEvent.id)]
    assert actions == ["activity.create", "activity.edit"]


def test_a_cancelled_activity_cannot_be_edited(place, boss):
    activity = activities.cancel_activity(boss, f.activity(boss, place.north))
    with pytest.raises(errors.ActivityNotOpen):
        activities.edit_activity(boss, activity, title="Back again")


# --- cancelling an activity --------------------------------------------------------------


def test_cancelling_an_activity_tells_everyone_signed_up_or_waiting(place, boss):
    activity = f.activity(boss, place.north, capacity=2, title="Picnic")
    seated_a, seated_b, waiting, gone = f.residents(place.north, 4)
    for resident in (seated_a, seated_b, waiting, gone):
        activities.join(resident, activity)
    activities.cancel(gone, activity)  # left before: no notice about the cancellation
    cancelled = activities.cancel_activity(boss, activity, reason="storm warning")
    assert cancelled.status == Activity.CANCELLED
    for resident in (seated_a, seated_b, waiting):
        [(_, params)] = f.notices_of(resident, notices.ACTIVITY_CANCELLED)
        assert params == {"activity": "A1", "title": "Picnic", "reason": "storm warning"}
    assert f.notices_of(gone, notices.ACTIVITY_CANCELLED) == []
    assert set(states(activity).values()) == {"cancelled"}
    assert {s.reason for s in Signup.select() if s.resident_id != gone.id} == {"storm warning"}
    with pytest.raises(errors.ActivityNotOpen):
        activities.cancel_activity(boss, activity)
    with pytest.raises(errors.ActivityNotOpen):
        activities.join(f.resident(place.north), cancelled)
    event = AuditEvent.get(AuditEvent.action == "activity.cancel")
    assert (event.staff_id, event.community_id) == (boss.id, place.north.id)


def test_only_coordinators_of_the_community_cancel_activities(place, boss):
    activity = f.activity(boss, place.north)
    for other in (f.clerk(place.north), f.coordinator(place.south)):
        with pytest.raises(errors.NotPermitted):
            activities.cancel_activity(other, activity)
    assert Activity.get_by_id(activity.id).status == Activity.OPEN
    assert activities.cancel_activity(f.coordinator(place.street), activity).status == Activity.CANCELLED


# --- joining and leaving -----------------------------------------------------------------


def test_join_takes_a_seat_and_only_staff_joining_for_a_resident_queues_a_notice(place, boss):
    activity = f.activity(boss, place.north, place="Hall", title="Tea")
    resident, neighbour = f.residents(place.north, 2)
    signup = activities.join(resident, activity)
    assert (signup.state, signup.activity_id, signup.resident_id) == ("signed_up", activity.id, resident.id)
    assert taken(activity) == 1
    assert f.notices_of(resident) == []  # their own sign-up: the reply is the one message
    activities.join(neighbour, activity, staff=boss)
    [(kind, params)] = f.notices_of(neighbour)
    assert kind == notices.SIGNED_UP
    assert params == {
        "activity": "A1", "title": "Tea", "place": "Hall",
        "starts_at": activity.starts_at.isoformat(timespec="minutes"),
    }
    assert [s.id for s in activities.signups_of(resident)] == [signup.id]
    # A resident joining by themselves leaves no audit event.
    assert [e.action for e in AuditEvent.select()] == ["activity.create", "signup.join"]


def test_joining_twice_changes_nothing(place, boss):
    activity = f.activity(boss, place.north)
    resident = f.resident(place.north)
    first = activities.join(resident, activity)
    second = activities.join(resident, activity)
    assert first.id == second.id
    assert Signup.select().count() == 1
    assert taken(activity) == 1


def test_a_full_activity_puts_people_on_the_waitlist(place, boss):
    activity = f.activity(boss, place.north, capacity=2)
    a, b, c, d = f.residents(place.north, 4)
    assert [activities.join(r, activity).state for r in (a, b, c, d)] == [
        "signed_up", "signed_up", "waitlisted", "waitlisted"
    ]
    assert taken(activity) == 2
    assert [s.resident_id for s in activities.roster(activity)] == [a.id, b.id, c.id, d.id]
    assert activities.join(c, activity).state == "waitlisted"  # joining again keeps the place
    assert_seats_add_up(activity)


def test_cancelling_promotes_the_first_waiter(place, boss):
    activity = f.activity(boss, place.north, capacity=2)
    a, b, c, d = f.residents(place.north, 4)
    for resident in (a, b, c, d):
        activities.join(resident, activity)
    left = activities.cancel(a, activity)
    assert left.state == "cancelled"
    assert states(activity) == {a.id: "cancelled", b.id: "signed_up", c.id: "signed_up", d.id: "waitlisted"}
    assert f.kinds_of(a) == []  # their own actions, answered by their replies
    assert f.kinds_of(c) == ["promoted"]
    assert f.kinds_of(d) == []
    assert taken(activity) == 2
    assert_seats_add_up(activity)


def test_leaving_the_waitlist_frees_no_seat(place, boss):
    activity = f.activity(boss, place.north, capacity=1)
    a, b, c = f.residents(place.north, 3)
    for resident in (a, b, c):
        activities.join(resident, activity)
    activities.cancel(b, activity)
    assert states(activity) == {a.id: "signed_up", b.id: "cancelled", c.id: "waitlisted"}
    assert taken(activity) == 1
    assert f.notices_of(c, notices.PROMOTED) == []


def test_cancelling_twice_or_without_a_sign_up_is_not_signed_up(place, boss):
    activity = f.activity(boss, place.north)
    a, b = f.residents(place.north, 2)
    activities.join(a, activity)
    activities.cancel(a, activity)
    with pytest.raises(errors.NotSignedUp):
        activities.cancel(a, activity)
    with pytest.raises(errors.NotSignedUp):
        activities.cancel(b, activity)
    assert taken(activity) == 0


def test_rejoining_after_cancelling(place, boss):
    activity = f.activity(boss, place.north, capacity=1)
    a, b = f.residents(place.north, 2)
    first = activities.join(a, activity)
    activities.cancel(a, activity)
    again = activities.join(a, activity)
    assert (again.id, again.state) == (first.id, "signed_up")
    assert Signup.select().count() == 1
    assert taken(activity) == 1
    # With the seat gone, rejoining puts one at the back of the queue.
    activities.join(b, activity)
    activities.cancel(a, activity)
    assert states(activity)[b.id] == "signed_up"
    assert activities.join(a, activity).state == "waitlisted"
    assert_seats_add_up(activity)


def test_a_newcomer_does_not_jump_the_queue(place, boss):
    activity = f.activity(boss, place.north, capacity=1)
    a, b, c = f.residents(place.north, 3)
    activities.join(a, activity)
    activities.join(b, activity)
    activities.cancel(a, activity)  # b takes the seat
    assert activities.join(c, activity).state == "waitlisted"
    assert states(activity) == {a.id: "cancelled", b.id: "signed_up", c.id: "waitlisted"}


def test_join_and_cancel_close_at_the_start(place, boss):
    starts = f.future(days=1)
    activity = f.activity(boss, place.north, starts_at=starts)
    a, b = f.residents(place.north, 2)
    activities.join(a, activity, now=starts - datetime.timedelta(minutes=1))
    with pytest.raises(errors.ActivityStarted):
        activities.join(b, activity, now=starts)
    with pytest.raises(errors.ActivityStarted):
        activities.join(b, activity, now=starts + HOUR)
    with pytest.raises(errors.ActivityStarted):
        activities.cancel(a, activity, now=starts)
    assert states(activity) == {a.id: "signed_up"}
    assert taken(activity) == 1


def test_a_resident_of_another_community_cannot_join(place, boss):
    activity = f.activity(boss, place.north)
    outsider = f.resident(place.south)
    with pytest.raises(errors.ActivityNotFound):
        activities.join(outsider, activity)
    assert Signup.select().count() == 0
    assert taken(activity) == 0


def test_a_closed_resident_cannot_join(place, boss):
    activity = f.activity(boss, place.north)
    resident = people.close_resident(boss, f.resident(place.north))
    with pytest.raises(errors.ResidentClosed):
        activities.join(resident, activity)
    assert Signup.select().count() == 0
    assert f.kinds_of(resident) == []


def test_a_closed_activity_takes_no_sign_ups(place, boss):
    activity = activities.close_activity(boss, f.activity(boss, place.north))
    with pytest.raises(errors.ActivityNotOpen):
        activities.join(f.resident(place.north), activity)


def test_join_with_a_stale_activity_after_it_was_cancelled_is_refused(place, boss):
    """A request that loaded the activity just before a coordinator cancelled it."""
    activity = f.activity(boss, place.north)
    activities.cancel_activity(boss, activity, "rain")  # `activity` still says "open"
    resident = f.resident(place.north)
    with pytest.raises(errors.ActivityNotOpen):
        activities.join(resident, activity)
    assert Signup.select().count() == 0
    assert taken(activity) == 0


def test_staff_can_sign_residents_up_in_their_community(place, boss):
    activity = f.activity(boss, place.north)
    a, b = f.residents(place.north, 2)
    signup = activities.join(a, activity, staff=boss)
    assert (signup.state, signup.created_by_id) == ("signed_up", boss.id)
    with pytest.raises(errors.NotPermitted):
        activities.join(b, activity, staff=f.clerk(place.north))
    with pytest.raises(errors.NotPermitted):
        activities.join(b, activity, staff=f.coordinator(place.south))
    activities.cancel(a, activity, staff=boss)
    assert [e.action for e in AuditEvent.select().order_by(AuditEvent.id)] == [
        "activity.create", "signup.join", "signup.cancel"
    ]
    assert states(activity) == {a.id: "cancelled"}


# --- check-in ----------------------------------------------------------------------------


def test_check_in_with_the_code_on_the_day(place, boss):
    starts = f.future(days=1)
    activity = f.activity(boss, place.north, starts_at=starts)
    resident = f.resident(place.north)
    activities.join(resident, activity)
    on_the_day = starts - 2 * HOUR
    signup = activities.check_in(resident, f" {activity.checkin_code[:2]} {activity.checkin_code[2:]} ",
                                 now=on_the_day)
    assert signup.state == Signup.CHECKED_IN
    assert activities.check_in(resident, activity.checkin_code, now=starts + HOUR).state == "checked_in"
    # A checked-in resident cannot cancel any more.
    with pytest.raises(errors.NotSignedUp):
        activities.cancel(resident, activity, now=on_the_day)


def test_check_in_refuses_a_wrong_code_the_wrong_day_or_no_seat(place, boss):
    starts = f.future(days=1)
    activity = f.activity(boss, place.north, starts_at=starts, capacity=1)
    seated, waiting, stranger = f.residents(place.north, 3)
    activities.join(seated, activity)
    activities.join(waiting, activity)
    code = activity.checkin_code
    wrong = f"{(int(code) + 1) % 10_000:04d}"
    for resident, text, now in (
        (seated, wrong, starts),
        (seated, "", starts),
        (seated, code, starts - datetime.timedelta(days=1)),
        (seated, code, starts + datetime.timedelta(hours=13)),
        (waiting, code, starts),
        (stranger, code, starts),
    ):
        with pytest.raises(errors.WrongCheckInCode):
            activities.check_in(resident, text, now=now)
    assert states(activity) == {seated.id: "signed_up", waiting.id: "waitlisted"}


def test_guessing_check_in_codes_is_cut_short(place, boss):
    starts = f.future(days=1)
    activity = f.activity(boss, place.north, starts_at=starts)
    resident = f.resident(place.north)
    activities.join(resident, activity)
    code = activity.checkin_code
    early = starts - datetime.timedelta(hours=11)
    for guess in range(activities.MAX_CHECK_IN_FAILURES):
        wrong = f"{(int(code) + 1 + guess) % 10_000:04d}"
        with pytest.raises(errors.WrongCheckInCode):
            activities.check_in(resident, wrong, now=early)
    with pytest.raises(errors.TooManyCheckInAttempts):
        activities.check_in(resident, code, now=starts)  # even the right code, for a while
    later = early + activities.CHECK_IN_WINDOW + datetime.timedelta(minutes=1)
    assert activities.check_in(resident, code, now=later).state == "checked_in"


def test_a_closed_resident_cannot_check_in(place, boss):
    starts = f.future(days=1)
    activity = f.activity(boss, place.north, starts_at=starts)
    resident = f.resident(place.north)
    activities.join(resident, activity)
    resident = people.close_resident(boss, resident)
    with pytest.raises(errors.ResidentClosed):
        activities.check_in(resident, activity.checkin_code, now=starts)


# --- reminders ---------------------------------------------------------------------------


def test_reminders_are_queued_once_per_seated_sign_up_starting_within_a_day(place, boss):
    now = f.future(days=0)
    soon = f.activity(boss, place.north, starts_at=now + 10 * HOUR, capacity=2, title="Soon", place="Hall")
    later = f.activity(boss, place.north, starts_at=now + 3 * 24 * HOUR)
    a, b, c, d, e = f.residents(place.north, 5)
    for resident in (a, b, c):
        activities.join(resident, soon, now=now - 2 * 24 * HOUR)  # c waits
    activities.join(d, later)
    activities.join(e, later, now=later.starts_at - 2 * HOUR)  # inside the window: its reply said when
    assert notices.queue_reminders(now=now) == 2
    assert notices.queue_reminders(now=later.starts_at - HOUR) == 1  # d's, not e's
    assert f.notices_of(e, notices.REMINDER) == []
    assert notices.queue_reminders(now=now) == 0
    [(_, params)] = f.notices_of(a, notices.REMINDER)
    assert params == {
        "activity": soon.code, "title": "Soon", "place": "Hall",
        "starts_at": soon.starts_at.isoformat(timespec="minutes"),
    }
    assert len(f.notices_of(b, notices.REMINDER)) == 1
    assert f.notices_of(c, notices.REMINDER) == []
    # A seat taken later gets its own reminder, once.
    activities.cancel(a, soon, now=now)
    assert notices.queue_reminders(now=now) == 1
    assert len(f.notices_of(c, notices.REMINDER)) == 1
    assert Notice.select().where(Notice.kind == notices.REMINDER).count() == 4


def test_no_reminders_for_cancelled_or_started_activities(place, boss):
    now = f.future(days=0)
    cancelled = f.activity(boss, place.north, starts_at=now + 5 * HOUR)
    started = f.activity(boss, place.north, starts_at=now + 5 * HOUR)
    a, b = f.residents(place.north, 2)
    activities.join(a, cancelled)
    activities.join(b, started)
    activities.cancel_activity(boss, cancelled)
    assert notices.queue_reminders(now=now + 6 * HOUR) == 0
    assert Notice.select().where(Notice.kind == notices.REMINDER).count() == 0


def test_notices_are_pending_until_sent(place, boss):
    activity = f.activity(boss, place.north)
    a, b = f.residents(place.north, 2)
    activities.join(a, activity, staff=boss)
    activities.join(b, activity, staff=boss)
    assert [n.kind for n in notices.pending_notices()] == ["signed_up", "signed_up"]
    assert [n.resident_id for n in notices.pending_notices(resident=b)] == [b.id]
    assert notices.queue_notice("custom", a, dedupe_key="k", x=1) is not None
    assert notices.queue_notice("custom", a, dedupe_key="k", x=2) is None
    assert [notices.notice_params(n) for n in Notice.select().where(Notice.kind == "custom")] == [{"x": 1}]
