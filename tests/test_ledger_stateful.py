"""A random walk through awards, spends, reversals and replays, checked against a model in plain ints."""

import shutil
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import ledger
from ledger import Entry

AMOUNTS = st.integers(min_value=1, max_value=1000)
REASONS = st.sampled_from(["mistake", "duplicate"])


@dataclass
class Posted:
    """What the model remembers about a transfer it saw succeed."""

    id: int
    kind: str
    legs: dict  # account index -> amount
    key: str
    # (source index, destination index, amount, kind, memo, actor) for transfer(); None for reversals
    call: tuple
    reversal_reason: str | None = None  # set once reversed through the default key
    reversed_by: int | None = None


class LedgerMachine(RuleBasedStateMachine):
    """Accounts 0 = issuer, 1..3 = residents, 4 = shop."""

    ISSUER, RESIDENTS, SHOP = 0, (1, 2, 3), 4

    #: Set by the test: returns the URL of a new, empty, migrated database.
    new_database_url = None

    @initialize()
    def open_accounts(self):
        # Each example gets its own database, so verify() reads only this example's ledger.
        self.database = ledger.open_database(self.new_database_url())
        self.database.connect()
        self.prefix = uuid.uuid4().hex[:12]
        kinds = ["issuer", "resident", "resident", "resident", "shop"]
        self.accounts = [ledger.open_account(f"{self.prefix}:{n}", kind) for n, kind in enumerate(kinds)]
        self.ids = [a.id for a in self.accounts]
        self.balances = [0] * 5
        self.entries = 0
        self.posted = []
        self.keys = 0

    def fresh_key(self):
        self.keys += 1
        return f"{self.prefix}:k{self.keys}"

    def call_transfer(self, call, key):
        source, destination, amount, kind, memo, actor = call
        return ledger.transfer(
            self.ids[source], self.ids[destination], amount, kind=kind, memo=memo, actor=actor,
            idempotency_key=key,
        )

    def apply(self, legs):
        for index, amount in legs.items():
            self.balances[index] += amount
        self.entries += len(legs)

    def record(self, transfer, kind, legs, key, call):
        assert transfer.kind == kind
        assert {e.account_id: e.amount for e in transfer.entries} == {self.ids[i]: a for i, a in legs.items()}
        self.apply(legs)
        self.posted.append(Posted(transfer.id, kind, legs, key, call))

    @rule(resident=st.sampled_from(RESIDENTS), amount=AMOUNTS)
    def award(self, resident, amount):
        call = (self.ISSUER, resident, amount, "award", f"award {amount}", "staff:1")
        key = self.fresh_key()
        t = self.call_transfer(call, key)
        self.record(t, "award", {self.ISSUER: -amount, resident: amount}, key, call)

    @rule(resident=st.sampled_from(RESIDENTS), amount=st.integers(min_value=1, max_value=1500))
    def spend(self, resident, amount):
        call = (resident, self.SHOP, amount, "redeem", "", "counter:1")
        key = self.fresh_key()
        if self.balances[resident] < amount:
            with pytest.raises(ledger.InsufficientPoints):
                self.call_transfer(call, key)
        else:
            t = self.call_transfer(call, key)
            self.record(t, "redeem", {resident: -amount, self.SHOP: amount}, key, call)

    @precondition(lambda self: self.posted)
    @rule(data=st.data(), reason=REASONS)
    def reverse(self, data, reason):
        original = data.draw(st.sampled_from(self.posted))
        if original.kind == "reversal":
            with pytest.raises(ledger.NotReversible):
                ledger.reverse(original.id, reason, "staff:1")
        elif original.reversed_by is not None:
            if reason == original.reversal_reason:
                assert ledger.reverse(original.id, reason, "staff:1").id == original.reversed_by
            else:
                with pytest.raises(ledger.AlreadyReversed):
                    ledger.reverse(original.id, reason, "staff:1")
        else:
            legs = {i: -a for i, a in original.legs.items()}
            overdraws = any(
                self.balances[i] + a < 0 for i, a in legs.items() if i != self.ISSUER
            )
            if overdraws:
                with pytest.raises(ledger.InsufficientPoints):
                    ledger.reverse(original.id, reason, "staff:1")
            else:
                r = ledger.reverse(original.id, reason, "staff:1")
                assert r.reverses_id == original.id
                self.record(r, "reversal", legs, f"reversal:{original.id}", None)
                original.reversed_by, original.reversal_reason = r.id, reason

    @precondition(lambda self: any(p.call for p in self.posted))
    @rule(data=st.data())
    def replay_same(self, data):
        original = data.draw(st.sampled_from([p for p in self.posted if p.call]))
        assert self.call_transfer(original.call, original.key).id == original.id

    @precondition(lambda self: any(p.call for p in self.posted))
    @rule(data=st.data(), what=st.sampled_from(["amount", "memo", "actor", "destination"]))
    def replay_different(self, data, what):
        original = data.draw(st.sampled_from([p for p in self.posted if p.call]))
        source, destination, amount, kind, memo, actor = original.call
        if what == "amount":
            amount += 1
        elif what == "memo":
            memo += "!"
        elif what == "actor":
            actor = "someone else"
        else:
            destination = self.SHOP if kind == "award" else self.ISSUER
        with pytest.raises(ledger.IdempotencyConflict):
            self.call_transfer((source, destination, amount, kind, memo, actor), original.key)

    def teardown(self):
        if hasattr(self, "database") and not self.database.is_closed():
            self.database.close()

    @invariant()
    def balances_match_the_model(self):
        assert [ledger.balance(i) for i in self.ids] == self.balances
        assert sum(self.balances) == 0
        assert sum(ledger.balance(a) for a in ledger.Account.select()) == 0
        assert all(b >= 0 for b in self.balances[1:])
        assert Entry.select().where(Entry.account.in_(self.ids)).count() == self.entries

    @invariant()
    def history_matches_the_balance(self):
        for index in (*self.RESIDENTS, self.SHOP):
            lines = ledger.history(self.ids[index], limit=1)
            assert (lines[0].balance_after if lines else 0) == self.balances[index]

    @invariant()
    def the_ledger_verifies(self):
        report = ledger.verify()
        assert report.ok, report.problems


@pytest.fixture
def new_database_url(db_url, tmp_path):
    """A factory of fresh databases copied from the test's still-untouched one (one per example)."""
    made = []
    if db_url.startswith("sqlite:///"):
        pristine = tmp_path / "pristine.db"
        shutil.copy(db_url.removeprefix("sqlite:///"), pristine)

        def make():
            path = tmp_path / f"example-{len(made)}.db"
            shutil.copy(pristine, path)
            made.append(path)
            return f"sqlite:///{path}"

        yield make
        return

    parts = urlsplit(db_url)
    template = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))

    def admin(sql):
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql)

    def make():
        name = f"{template}_ex{len(made)}"
        admin(f"CREATE DATABASE {name} TEMPLATE {template}")
        made.append(name)
        return urlunsplit(parts._replace(path="/" + name))

    yield make
    if ledger.db.obj is not None and not ledger.db.is_closed():
        ledger.db.close()
    for name in made:
        admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_random_postings_agree_with_the_model(new_database_url):
    class Machine(LedgerMachine):
        pass

    Machine.new_database_url = staticmethod(new_database_url)
    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=25,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            database=None,
        ),
    )
