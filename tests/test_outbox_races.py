"""Several outbox workers at once, as real processes: every notice is claimed once, none is lost.

The children are started with "spawn" (clean interpreters sharing nothing but the database), so
what they run lives at the top level of this module; pytest puts tests/ on sys.path and spawn hands
the parent's sys.path to each child. A barrier from the same context releases them together.
"""

import datetime
import os
import time
from collections import Counter

import community_factory as make
import pytest
from processes import CONTEXT
from racing import gather

import ledger
from botapp import outbox
from community import Notice
from community.notices import queue_notice
from ledger.models import utcnow

TIMEOUT = 60
WORKERS = 4
NOTICES = 40


# --- what each child does (module level, so that spawn can import it) ---------------------


def drain(db_url, barrier, results, index, pause):
    """Open the database, wait for every sibling, then claim and mark until nothing is left.

    Reports (index, [claimed notice ids]) or (index, "error ...") on `results`.
    """
    try:
        database = ledger.open_database(db_url)
        database.connect()
        claimed = []
        try:
            barrier.wait(timeout=TIMEOUT)
            while True:
                notices = outbox.claim(limit=3)
                if not notices:
                    break
                for notice in notices:
                    claimed.append(notice.id)
                    time.sleep(pause)  # "sending": lets the siblings' claims interleave with ours
                    outbox.mark_sent(notice, "log")
        finally:
            database.close()
        results.put((index, claimed))
    except BaseException as exc:  # the parent asserts on it
        results.put((index, f"error {type(exc).__name__}: {exc}"))


def claim_and_die(db_url, results, limit):
    """Claim, "send" (report the ids), then die before marking anything."""
    ledger.open_database(db_url).connect()
    results.put([n.id for n in outbox.claim(limit=limit)])
    os._exit(1)


# --- the parent side -------------------------------------------------------------------------


@pytest.fixture
def notices(db):
    """NOTICES pending notices for a few residents."""
    place = make.build_place()
    residents = make.residents(place.north, 4)
    made = [queue_notice("announcement", residents[n % 4], text=f"message {n}") for n in range(NOTICES)]
    return [n.id for n in made]


def run_workers(db_url, pause):
    barrier = CONTEXT.Barrier(WORKERS)
    results = CONTEXT.Queue()
    processes = [
        CONTEXT.Process(target=drain, args=(db_url, barrier, results, index, pause), daemon=True)
        for index in range(WORKERS)
    ]
    for process in processes:
        process.start()
    outcomes = gather(processes, results, TIMEOUT)  # the barrier stays referenced until then
    errors = [o for o in outcomes if isinstance(o, str)]
    assert not errors, errors
    return outcomes


@pytest.mark.parametrize("pause", [0.0, 0.005])
def test_concurrent_workers_claim_every_notice_exactly_once(db_url, notices, pause):
    claimed = run_workers(db_url, pause)
    every = Counter(i for ids in claimed for i in ids)
    assert sorted(every) == sorted(notices)  # nothing left behind ...
    assert set(every.values()) == {1}, [i for i, n in every.items() if n > 1]  # ... nothing twice
    person = {n.id: n.resident_id for n in Notice.select()}
    for ids in claimed:  # each worker takes a person's notices oldest first (a person's order is kept)
        for who in set(person.values()):
            theirs = [i for i in ids if person[i] == who]
            assert theirs == sorted(theirs)
    rows = list(Notice.select())
    assert len(rows) == NOTICES
    assert {(n.status, n.channel, n.attempts) for n in rows} == {(Notice.SENT, "log", 1)}
    assert all(n.sent_at is not None for n in rows)
    assert outbox.claim() == []
    if pause:
        assert sum(1 for ids in claimed if ids) >= 2, claimed  # the workers really did share the work


def test_concurrent_workers_take_over_what_dead_workers_left_exactly_once(db_url, notices):
    # Every notice was claimed by a worker that died: its lease ran out a moment ago.
    Notice.update(status=outbox.SENDING, attempts=1,
                  next_attempt_at=utcnow() - datetime.timedelta(seconds=1)).execute()
    claimed = run_workers(db_url, 0.002)
    every = Counter(i for ids in claimed for i in ids)
    assert sorted(every) == sorted(notices) and set(every.values()) == {1}
    assert {(n.status, n.attempts) for n in Notice.select()} == {(Notice.SENT, 2)}


def test_a_worker_that_dies_between_send_and_mark_loses_nothing(db_url, notices):
    results = CONTEXT.SimpleQueue()
    child = CONTEXT.Process(target=claim_and_die, args=(db_url, results, 3))
    child.start()
    child.join(TIMEOUT)
    assert child.exitcode == 1
    sent_by_the_dead = results.get()
    results.close()
    assert sent_by_the_dead == notices[:3]
    assert {n.status for n in Notice.select().where(Notice.id.in_(sent_by_the_dead))} == {outbox.SENDING}

    # While the lease runs nobody takes them again; the others go out as usual.
    while batch := outbox.claim(limit=10):
        assert not {n.id for n in batch} & set(sent_by_the_dead)
        for notice in batch:
            outbox.mark_sent(notice, "log")
    assert outbox.claim() == []

    later = utcnow() + outbox.LEASE + datetime.timedelta(seconds=1)
    again = outbox.claim(limit=10, now=later)
    assert [n.id for n in again] == sent_by_the_dead
    assert {(n.status, n.attempts) for n in again} == {(outbox.SENDING, 2)}
    for notice in again:
        outbox.mark_sent(notice, "log")
    assert outbox.claim(now=later + outbox.LEASE) == []
    rows = list(Notice.select())
    assert {n.status for n in rows} == {Notice.SENT} and len(rows) == NOTICES
    assert sorted(n.id for n in rows if n.attempts == 2) == sent_by_the_dead
