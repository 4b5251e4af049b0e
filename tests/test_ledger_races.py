"""Real concurrency: spawned processes hit the same accounts at the same moment."""

from collections import Counter

import pytest
from racing import race

import ledger
from ledger import Transfer


def spend(resident_id, shop_id, amount, key):
    return ledger.transfer(resident_id, shop_id, amount, kind="redeem", actor="counter:1", idempotency_key=key)


def reverse(transfer_id, reason, key=None):
    return ledger.reverse(transfer_id, reason, "staff:1", idempotency_key=key)


@pytest.fixture
def accounts(db):
    return (
        ledger.open_account("issuer:1", "issuer"),
        ledger.open_account("resident:1", "resident"),
        ledger.open_account("shop:1", "shop"),
    )


def award(issuer, resident, amount, key):
    return ledger.transfer(issuer, resident, amount, kind="award", actor="staff:1", idempotency_key=key)


def test_concurrent_spends_never_overdraw(db_url, accounts):
    issuer, resident, shop = accounts
    award(issuer, resident, 300, "a")
    outcomes = race(db_url, [(spend, (resident.id, shop.id, 100, f"spend-{n}")) for n in range(20)])
    kinds = Counter("ok" if o.startswith("ok:") else o for o in outcomes)
    assert kinds == {"ok": 3, "InsufficientPoints": 17}
    assert ledger.balance(resident) == 0
    assert ledger.balance(shop) == 300
    assert Transfer.select().where(Transfer.kind == "redeem").count() == 3
    assert sorted(line.balance_after for line in ledger.history(resident)) == [0, 100, 200, 300]
    report = ledger.verify()
    assert report.ok, report.problems


def test_one_key_posted_by_many_processes_at_once_is_posted_once(db_url, accounts):
    issuer, resident, shop = accounts
    award(issuer, resident, 1000, "a")
    outcomes = race(db_url, [(spend, (resident.id, shop.id, 250, "same-key"))] * 10)
    assert len(set(outcomes)) == 1, outcomes
    assert outcomes[0].startswith("ok:")
    (stored,) = Transfer.select().where(Transfer.idempotency_key == "same-key")
    assert outcomes[0] == f"ok:{stored.id}"
    assert Transfer.select().count() == 2
    assert ledger.balance(resident) == 750
    assert ledger.balance(shop) == 250
    report = ledger.verify()
    assert report.ok, report.problems


@pytest.mark.parametrize("round_", range(4))
def test_a_reversal_racing_a_spend_of_the_same_points_has_one_winner(db_url, accounts, round_):
    issuer, resident, shop = accounts
    given = award(issuer, resident, 500, "a")
    spend_outcome, reverse_outcome = race(
        db_url,
        [(spend, (resident.id, shop.id, 500, "spend-it")), (reverse, (given.id, "awarded by mistake"))],
    )
    reversal = Transfer.get_or_none(Transfer.reverses == given.id)
    spent = Transfer.get_or_none(Transfer.idempotency_key == "spend-it")
    if spend_outcome.startswith("ok:"):
        assert reverse_outcome == "InsufficientPoints"
        assert reversal is None
        assert spend_outcome == f"ok:{spent.id}"
        assert (ledger.balance(issuer), ledger.balance(shop)) == (-500, 500)
    else:
        assert spend_outcome == "InsufficientPoints"
        assert reverse_outcome == f"ok:{reversal.id}"
        assert spent is None
        assert (ledger.balance(issuer), ledger.balance(shop)) == (0, 0)
    assert ledger.balance(resident) == 0
    assert all(line.balance_after >= 0 for line in ledger.history(resident))
    report = ledger.verify()
    assert report.ok, report.problems


def test_many_processes_reversing_one_transfer_reverse_it_once(db_url, accounts):
    issuer, resident, _ = accounts
    given = award(issuer, resident, 500, "a")
    calls = (
        [(reverse, (given.id, "duplicate"))] * 3  # the same request: replays of one reversal
        + [(reverse, (given.id, "mistake"))] * 3  # the default key with other content
        + [(reverse, (given.id, "mistake", f"own-key-{n}")) for n in range(2)]  # keys of their own
    )
    outcomes = race(db_url, calls)
    (reversal,) = Transfer.select().where(Transfer.reverses == given.id)
    winners = [n for n, o in enumerate(outcomes) if o == f"ok:{reversal.id}"]
    assert winners in ([0, 1, 2], [3, 4, 5], [6], [7]), outcomes
    assert Counter(o for o in outcomes if not o.startswith("ok:")) == {"AlreadyReversed": 8 - len(winners)}
    assert Transfer.select().where(Transfer.kind == "reversal").count() == 1
    assert ledger.balance(resident) == 0
    report = ledger.verify()
    assert report.ok, report.problems
