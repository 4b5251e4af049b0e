"""Transactions on PostgreSQL send BEGIN with their first statement (and, later in this file,
writes with COMMIT): every outcome stays what a round trip each would give, on both databases."""

import pytest
from commits import light
from peewee import IntegrityError, fn

from botapp.models import Inbound
from ledger.db import Bound, is_postgresql, later, prepared, record, together
from ledger.models import utcnow


def keys():
    return sorted(row.key for row in Inbound.select())


def test_a_transaction_whose_first_statement_fails_leaves_nothing_and_the_connection_usable(db):
    Inbound.create(key="sms:1")
    with pytest.raises(IntegrityError), db.atomic():
        Inbound.create(key="sms:1")  # the first statement of the transaction
    with db.atomic():
        Inbound.create(key="sms:2")
    assert keys() == ["sms:1", "sms:2"]


def test_a_transaction_fails_half_way_and_leaves_nothing(db):
    with pytest.raises(IntegrityError), db.atomic():
        Inbound.create(key="sms:3")
        Inbound.create(key="sms:3")
    assert keys() == []


def test_transactions_that_run_nothing_or_only_a_savepoint_commit_and_roll_back(db):
    with db.atomic():
        pass
    with db.atomic() as outer:
        outer.rollback()
    with db.atomic(), db.atomic():  # the inner one's savepoint is the transaction's first statement
        Inbound.create(key="sms:4")
    with pytest.raises(ZeroDivisionError), db.atomic():
        with db.atomic():
            Inbound.create(key="sms:5")
        1 / 0  # noqa: B018
    assert keys() == ["sms:4"]


def test_a_rolled_back_transaction_can_be_followed_by_another_on_the_same_connection(db):
    with db.atomic() as txn:
        Inbound.create(key="sms:6")
        txn.rollback()  # peewee begins again at once: the next statement is in a new transaction
        Inbound.create(key="sms:7")
    assert keys() == ["sms:7"]


_keep = prepared(lambda key, now: Inbound.insert(key=key, created_at=now))
_count = prepared(lambda key: Inbound.select(fn.COUNT(Inbound.id)).where(Inbound.key == key).tuples())


def test_a_last_write_sent_later_fails_by_the_end_of_its_block_and_undoes_the_transaction(db):
    later(_keep.bind("sms:8", utcnow()))
    with pytest.raises(IntegrityError), db.atomic():
        Inbound.create(key="sms:9")
        later(_keep.bind("sms:8", utcnow()))  # a duplicate: raised here or at COMMIT
    assert keys() == ["sms:8"]


def test_a_write_sent_later_in_a_savepoint_fails_inside_it_and_the_transaction_goes_on(db):
    Inbound.create(key="sms:10")
    with db.atomic():
        with pytest.raises(IntegrityError), db.atomic():
            later(_keep.bind("sms:10", utcnow()))
        later(_keep.bind("sms:11", utcnow()))
    assert keys() == ["sms:10", "sms:11"]


def test_reads_together_come_back_in_order_with_what_is_waiting_written_first(db):
    with db.atomic():
        later(_keep.bind("sms:12", utcnow()))
        found = together(_count.bind("sms:12"), Bound.known("known"), _count.bind("sms:13"))
    assert found == [[(1,)], "known", [(0,)]]


def test_a_record_that_is_all_a_transaction_writes_commits_without_waiting_for_the_disk(db, statements):
    with db.atomic():
        assert _count.bind("sms:20").run() == [(0,)]  # reads do not count as writes
        record(_keep.bind("sms:20", utcnow()))
    assert light(statements()) and keys() == ["sms:20"]
    if not is_postgresql():
        assert db.execute_sql("PRAGMA synchronous").fetchone() == (2,)  # FULL again for what follows


def test_a_record_after_a_write_or_before_one_commits_durably_with_it(db, statements):
    with db.atomic():
        Inbound.create(key="sms:21")
        record(_keep.bind("sms:22", utcnow()))
    with db.atomic():
        record(_keep.bind("sms:23", utcnow()))
        assert _count.bind("sms:23").run() == [(1,)]  # the next statement writes it there and then
        later(_keep.bind("sms:24", utcnow()))
    with db.atomic(), db.atomic():  # in a savepoint
        record(_keep.bind("sms:25", utcnow()))
    assert keys() == ["sms:21", "sms:22", "sms:23", "sms:24", "sms:25"]
    # PostgreSQL is told where the record was last (the first block), and finds the write before it.
    assert sum(light([s]) for s in statements()) == (1 if is_postgresql() else 0)


def test_a_repeated_record_alone_fails_by_the_end_of_its_block_and_the_next_transaction_works(db):
    record(_keep.bind("sms:26", utcnow()))  # outside a transaction: written at once
    with pytest.raises(IntegrityError), db.atomic():
        record(_keep.bind("sms:26", utcnow()))
    with db.atomic():
        record(_keep.bind("sms:27", utcnow()))
    assert keys() == ["sms:26", "sms:27"]
    if not is_postgresql():
        assert db.execute_sql("PRAGMA synchronous").fetchone() == (2,)


@pytest.mark.skipif("not is_postgresql()", reason="SQLite decides from its own count of changes")
def test_postgresql_commits_lightly_only_a_transaction_that_has_written_nothing(db):
    db.execute_sql("SET synchronous_commit = on")  # as a durable server is (the test server is not)

    def told(write_first):
        with db.atomic() as txn:
            if write_first:
                Inbound.create(key="sms:28")
            setting = db.execute_sql(db.LIGHTLY[0]).fetchone()[0]
            txn.rollback()
        return setting

    assert told(write_first=False) == "off"
    assert told(write_first=True) == "on"
