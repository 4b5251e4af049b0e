"""Races between real processes: each child opens the database itself and calls the service.

The children are started with the "spawn" method, so nothing is shared but the database: the
worker functions below are importable module-level functions (pytest puts tests/ on sys.path,
and spawn hands the parent's sys.path to each child). A barrier makes them start together.
"""

import os
import random
import time
from pathlib import Path

import community_factory as f
import psycopg
import pytest
from processes import CONTEXT
from racing import gather

import ledger
from community import activities, awards
from community.models import Activity, Confirmation, Resident, Signup, Staff
from ledger import Transfer

TIMEOUT = 120
STAGGER = 0.002  # seconds: the most a child waits after the barrier


# --- what each child does (module level, so that spawn can import it) ---------------------


# Each action is what a request handler does: load the rows, then call the service.


def _join(resident_id, activity_id):
    resident, activity = Resident.get_by_id(resident_id), Activity.get_by_id(activity_id)
    return activities.join(resident, activity).state


def _confirm(staff_id, signup_id, times):
    staff = Staff.get_by_id(staff_id)
    outcomes = []
    for _ in range(times):
        try:
            outcomes.append(awards.confirm_participation(staff, signup_id).state)
        except Exception as exc:  # the outcome is the test's evidence
            outcomes.append(type(exc).__name__)
    return ",".join(outcomes)


def _cancel(resident_id, activity_id):
    resident, activity = Resident.get_by_id(resident_id), Activity.get_by_id(activity_id)
    return activities.cancel(resident, activity).state


def _cancel_activity(staff_id, activity_id):
    staff, activity = Staff.get_by_id(staff_id), Activity.get_by_id(activity_id)
    return activities.cancel_activity(staff, activity, "called off").status


def _text_in(message_id, phone, body):
    from botapp import sms
    from botapp.dialogue import Dialogue

    dialogue = Dialogue(str(Path(__file__).resolve().parent.parent / "translations"), region="CN",
                        code_secret="race")
    return "answered" if sms.receive(dialogue, message_id, phone, body) else "silent"


ACTIONS = {"join": _join, "confirm": _confirm, "cancel": _cancel, "cancel_activity": _cancel_activity,
           "sms": _text_in}


def child(db_url, barrier, results, index, steps):
    """Open the database; for each (action, args) step wait for everyone, then act.

    After the barrier each child waits a little (a fixed pseudo-random time per round and child),
    so that over many rounds the processes meet at many different offsets. Reports
    (index, [outcome per step]) on `results`.
    """
    database = ledger.open_database(db_url)
    database.connect()
    outcomes = []
    try:
        for step, (action, args) in enumerate(steps):
            barrier.wait(timeout=TIMEOUT)
            time.sleep(random.Random(f"{step}/{index}").random() * STAGGER)
            try:
                outcomes.append(ACTIONS[action](*args))
            except Exception as exc:  # reported to the parent, which asserts on it
                outcomes.append(f"error {type(exc).__name__}: {exc}")
    finally:
        database.close()
        results.put((index, outcomes))


def start_children(db_url, plans):
    """Start one process per plan (a list of (action, args) steps); step k of every plan together.

    Returns what finish_children needs; the barrier is part of it, as it must outlive the start.
    """
    barrier = CONTEXT.Barrier(len(plans))
    results = CONTEXT.Queue()
    processes = [
        CONTEXT.Process(target=child, args=(db_url, barrier, results, i, plan), daemon=True)
        for i, plan in enumerate(plans)
    ]
    for process in processes:
        process.start()
    return processes, results, barrier


def finish_children(processes, results, barrier):
    """Wait for the children (the barrier is held until then); return each one's outcomes."""
    return gather(processes, results, TIMEOUT)


def run_rounds(db_url, plans):
    """Run the plans in one process each, step k of every plan together; return their outcomes."""
    return finish_children(*start_children(db_url, plans))


def run_at_once(db_url, tasks):
    """Run (action, args) tasks in one process each, all released together; return their outcomes."""
    return [outcomes[0] for outcomes in run_rounds(db_url, [[task] for task in tasks])]


# --- set-up in the parent ----------------------------------------------------------------


def committed(db):
    """End the parent's use of the connection so the children see everything and nothing waits."""
    db.close()


def reopen(db):
    db.connect(reuse_if_open=True)


# --- the races ---------------------------------------------------------------------------


def test_ten_residents_race_for_three_seats(db, db_url, place, boss):
    activity = f.activity(boss, place.north, capacity=3)
    crowd = f.residents(place.north, 10)
    committed(db)
    outcomes = run_at_once(db_url, [("join", (r.id, activity.id)) for r in crowd])
    reopen(db)
    assert sorted(outcomes) == ["signed_up"] * 3 + ["waitlisted"] * 7
    assert Activity.get_by_id(activity.id).taken == 3
    rows = list(Signup.select().where(Signup.activity == activity.id))
    assert len(rows) == 10
    assert sorted(s.state for s in rows) == ["signed_up"] * 3 + ["waitlisted"] * 7
    # What each child was told is what the database holds.
    assert {r.id: o for r, o in zip(crowd, outcomes, strict=True)} == {s.resident_id: s.state for s in rows}


def test_two_coordinators_confirming_at_once_post_one_award(db, db_url, place, boss):
    deputy = f.coordinator(place.north)
    resident = f.resident(place.north)
    activity = f.activity(boss, place.north)
    signup = activities.join(resident, activity)
    f.begin(activity)
    committed(db)
    outcomes = run_at_once(
        db_url, [("confirm", (boss.id, signup.id, 5)), ("confirm", (deputy.id, signup.id, 5))]
    )
    reopen(db)
    for outcome in outcomes:
        assert set(outcome.split(",")) == {"confirmed"}, outcomes
    awards_ = Transfer.select().where(Transfer.kind == Transfer.AWARD)
    assert awards_.count() == 1
    assert ledger.balance(resident.account_id) == 100
    fresh = Signup.get_by_id(signup.id)
    assert (fresh.state, fresh.transfer_id) == (Signup.CONFIRMED, awards_.get().id)
    report = ledger.verify()
    assert report.ok, report.problems


def test_the_same_resident_joining_from_five_places_at_once_gets_one_sign_up(db, db_url, place, boss):
    activity = f.activity(boss, place.north, capacity=3)
    resident = f.resident(place.north)
    committed(db)
    outcomes = run_at_once(db_url, [("join", (resident.id, activity.id))] * 5)
    reopen(db)
    assert outcomes == ["signed_up"] * 5
    assert Signup.select().where(Signup.activity == activity.id).count() == 1
    assert Activity.get_by_id(activity.id).taken == 1
    assert f.kinds_of(resident) == []  # their own sign-up: answered by its reply, no notice


@pytest.mark.parametrize("registered", [True, False], ids=["resident", "newcomer"])
def test_five_first_messages_from_one_number_at_once_start_one_conversation(db, db_url, place, registered):
    from botapp.models import Conversation, Inbound
    from community.models import Contact

    phone = "+8613900139000"
    resident = f.resident(place.north, phone_number=phone) if registered else None
    committed(db)
    outcomes = run_at_once(db_url, [("sms", (f"SM-first-{i}", phone, "余额")) for i in range(5)])
    reopen(db)
    assert outcomes == ["answered"] * 5
    assert Conversation.select().where(Conversation.address == phone).count() == 1
    assert Inbound.select().where(Inbound.address == phone).count() == 5
    contacts = list(Contact.select().where(Contact.resident == (resident.id if resident else 0)))
    assert [(c.channel, c.verified) for c in contacts] == ([("sms", True)] if registered else [])


# The races below are short windows, so each test runs many rounds in the same processes.
ROUNDS = 100
ON_POSTGRESQL = bool(os.environ.get("TEST_DATABASE_URL"))


def seats_add_up(activity):
    """(taken, signed up, waiting, capacity) of an activity, read afresh."""
    fresh = Activity.get_by_id(activity.id)
    states = [s.state for s in Signup.select().where(Signup.activity == activity.id)]
    return fresh.taken, states.count("signed_up"), states.count("waitlisted"), fresh.capacity


def test_two_coordinators_confirming_a_rescue_at_once_award_it_once(db, db_url, place, boss):
    deputy = f.coordinator(place.north)
    resident = f.resident(place.north)
    signups = [
        activities.join(resident, f.activity(boss, place.north, category="rescue")) for _ in range(ROUNDS)
    ]
    for signup in signups:
        f.begin(signup.activity)
    committed(db)
    run_rounds(db_url, [[("confirm", (who.id, s.id, 1)) for s in signups] for who in (boss, deputy)])
    reopen(db)
    assert Confirmation.select().count() == 2 * ROUNDS
    stuck = [s.id for s in signups if Signup.get_by_id(s.id).state != Signup.CONFIRMED]
    assert stuck == [], "two confirmations, yet no award"
    assert Transfer.select().where(Transfer.kind == Transfer.AWARD).count() == ROUNDS
    assert ledger.balance(resident.account_id) == 300 * ROUNDS
    assert ledger.verify().ok


def test_a_cancellation_racing_joins_leaves_no_free_seat_while_someone_waits(db, db_url, place, boss):
    rounds = []
    for _ in range(ROUNDS):
        activity = f.activity(boss, place.north, capacity=1)
        seated = f.resident(place.north)
        activities.join(seated, activity)
        rounds.append((activity, seated, f.residents(place.north, 3)))
    committed(db)
    plans = [[("cancel", (seated.id, activity.id)) for activity, seated, _ in rounds]] + [
        [("join", (newcomers[k].id, activity.id)) for activity, _, newcomers in rounds] for k in range(3)
    ]
    run_rounds(db_url, plans)
    reopen(db)
    for activity, _, _ in rounds:
        taken, signed_up, waiting, capacity = seats_add_up(activity)
        assert taken == signed_up
        # Three newcomers for the one seat the cancellation freed: it is taken, two wait.
        assert (signed_up, waiting) == (capacity, 2), (
            f"activity {activity.code}: {signed_up} seated, {waiting} waiting"
        )


def wait_until(condition, what, seconds=30):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


@pytest.mark.skipif(not ON_POSTGRESQL, reason="SQLite runs one writer at a time; this interleaving needs two")
def test_a_cancellation_promotes_a_waiter_whose_join_commits_after_it(db, db_url, place, boss):
    """The same race, made certain: a third connection holds the joiner just before it commits.

    1. a blocker transaction inserts (uncommitted) a sign-up row with the joiner's key, so the
       joiner's own insert waits for it;
    2. the joiner (a child) finds the activity full, goes for the waitlist and waits on that insert;
    3. the seated resident (another child) cancels; it may finish or wait for the joiner;
    4. the blocker rolls back, so the joiner's waitlist entry commits.
    The seat freed in 3 must end up with the joiner.
    """
    activity = f.activity(boss, place.north, capacity=1)
    seated, joiner = f.residents(place.north, 2)
    activities.join(seated, activity)
    committed(db)
    with psycopg.connect(db_url) as blocker:

        def waiting_for_locks():
            return blocker.execute(
                "SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted AND pid <> pg_backend_pid()"
            ).fetchone()[0]

        blocker.execute(
            "INSERT INTO signup (activity_id, resident_id, category, note, state, reason, created_at,"
            " updated_at) VALUES (%s, %s, '', '', 'cancelled', '', now(), now())",
            (activity.id, joiner.id),
        )
        joining = start_children(db_url, [[("join", (joiner.id, activity.id))]])
        wait_until(lambda: waiting_for_locks() == 1, "the joiner never reached its insert")
        cancelling = start_children(db_url, [[("cancel", (seated.id, activity.id))]])
        canceller = cancelling[0][0]
        wait_until(lambda: canceller.exitcode is not None or waiting_for_locks() == 2,
                   "the cancellation neither finished nor waited")
        blocker.rollback()
    [[joined]] = finish_children(*joining)
    [[cancelled]] = finish_children(*cancelling)
    reopen(db)
    assert cancelled == "cancelled"
    assert joined in ("signed_up", "waitlisted")
    taken, signed_up, waiting, capacity = seats_add_up(activity)
    assert taken == signed_up
    assert (signed_up, waiting) == (1, 0), f"{signed_up} seated, {waiting} waiting, capacity {capacity}"
    assert Signup.get((Signup.activity == activity.id) & (Signup.resident == joiner.id)).state == "signed_up"
