"""On SQLite, a serving process's writers (pooled: web workers, the bot, the worker) wait their
turn in a queue the kernel keeps (an flock of `linli.db-queue`), not in SQLite's busy handler,
which sleeps in steps that grow to 100 ms."""

import fcntl
import os
import time

import pytest
from processes import CONTEXT

import ledger
from community import people
from community.models import Community, Resident


@pytest.fixture
def queue_file(db_url, place):
    if not ledger.is_sqlite():
        pytest.skip("PostgreSQL writers do not share one lock")
    ledger.db.close()
    database = ledger.open_database(db_url, pool=True)
    yield f"{database.database}-queue"
    database.close_all()


def register(url, community_id, started):
    ledger.open_database(url, pool=True)
    started.set()
    people.register_resident(Community.get_by_id(community_id), "王秀英", phone="+8613900000001")


def test_a_writer_waits_for_its_turn_and_goes_as_soon_as_it_is_given(db_url, place, queue_file):
    holder = os.open(queue_file, os.O_RDONLY | os.O_CREAT, 0o660)
    fcntl.flock(holder, fcntl.LOCK_EX)  # another writer's turn: SQLite's own lock is free
    started = CONTEXT.Event()
    child = CONTEXT.Process(target=register, args=(db_url, place.north.id, started))
    child.start()
    try:
        assert started.wait(30)
        child.join(0.5)
        assert child.is_alive(), "the writer went before its turn"
        assert not Resident.select().where(Resident.phone == "+8613900000001").exists()
        given = time.monotonic()
        fcntl.flock(holder, fcntl.LOCK_UN)
        child.join(30)
        assert child.exitcode == 0
        assert time.monotonic() - given < 5
    finally:
        os.close(holder)
        if child.is_alive():
            child.kill()
    assert Resident.select().where(Resident.phone == "+8613900000001").exists()


def _free(path):
    probe = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(probe)


def test_the_turn_is_held_for_the_transaction_and_given_back_when_it_fails(place, queue_file):
    with ledger.db.atomic():
        people.register_resident(place.north, "李建国", phone="+8613900000002")
        assert not _free(queue_file)
    assert _free(queue_file)
    with pytest.raises(RuntimeError), ledger.db.atomic():
        people.register_resident(place.north, "赵桂兰", phone="+8613900000003")
        raise RuntimeError("the counter's power went off")
    assert _free(queue_file)
    assert not Resident.select().where(Resident.phone == "+8613900000003").exists()
