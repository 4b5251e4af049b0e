"""The ledger's services on a real database: postings, idempotency, overdraft rules, reversals,
append-only storage, history and hostile text."""

import datetime

import peewee
import pytest

import ledger
from ledger import Account, Entry, Transfer


def snapshot():
    """Everything a refused operation must leave untouched."""
    return (
        Transfer.select().count(),
        Entry.select().count(),
        list(Account.select(Account.id, Account.balance, Account.version, Account.head_hash)
             .order_by(Account.id).tuples()),
    )


def award(issuer, resident, amount, key, memo="", actor="staff:1"):
    return ledger.transfer(
        issuer, resident, amount, kind="award", memo=memo, actor=actor, idempotency_key=key
    )


def spend(resident, shop, amount, key, memo="", actor="counter:1"):
    return ledger.transfer(resident, shop, amount, kind="redeem", memo=memo, actor=actor, idempotency_key=key)


@pytest.fixture
def accounts(db):
    return (
        ledger.open_account("issuer:1", "issuer", "Community 1"),
        ledger.open_account("resident:1", "resident", "Ada"),
        ledger.open_account("shop:1", "shop", "Counter"),
    )


def test_verify_reports_an_empty_ledger_as_sound(db):
    report = ledger.verify()
    assert report.ok
    assert (report.accounts, report.transfers, report.entries, report.problems) == (0, 0, 0, [])
    assert report.summary() == "ledger OK: 0 accounts, 0 transfers, 0 entries"


# --- accounts ----------------------------------------------------------------------------------


def test_open_account_is_idempotent_and_keeps_the_kind(db):
    first = ledger.open_account("resident:7", "resident", "Bo")
    again = ledger.open_account("resident:7", "resident")
    assert again.id == first.id
    assert Account.select().count() == 1
    assert (first.balance, first.version, first.head_hash) == (0, 0, "0" * 64)
    with pytest.raises(ledger.LedgerError):
        ledger.open_account("resident:7", "issuer")
    with pytest.raises(ledger.LedgerError):
        ledger.open_account("resident:8", "wizard")
    assert Account.select().count() == 1


# --- awards and spends -------------------------------------------------------------------------


def test_an_award_moves_points_from_the_issuer_to_the_resident(accounts):
    issuer, resident, _ = accounts
    t = award(issuer, resident, 150, "award-1", memo="sweeping the yard")
    assert t.kind == "award"
    assert t.memo == "sweeping the yard"
    assert t.actor == "staff:1"
    assert ledger.balance(resident) == 150
    assert ledger.balance(issuer) == -150  # the issuer may go negative
    entries = {e.account_id: e for e in Entry.select().where(Entry.transfer == t.id)}
    assert {a: e.amount for a, e in entries.items()} == {issuer.id: -150, resident.id: 150}
    assert {a: e.balance_after for a, e in entries.items()} == {issuer.id: -150, resident.id: 150}
    assert {e.seq for e in entries.values()} == {1}
    assert ledger.verify().ok


def test_the_past_is_written_in_order_and_the_future_is_refused(accounts):
    import datetime

    from ledger.models import happening_at, utcnow

    issuer, resident, _ = accounts
    week_ago = utcnow() - datetime.timedelta(days=7)
    with happening_at(week_ago):
        old = award(issuer, resident, 100, "award-old")
    new = award(issuer, resident, 100, "award-new")
    assert old.created_at == week_ago and new.created_at > week_ago
    assert ledger.verify().ok
    with pytest.raises(ValueError), happening_at(utcnow() + datetime.timedelta(minutes=1)):
        pass


def test_accounts_may_be_given_as_ids(accounts):
    issuer, resident, _ = accounts
    award(issuer.id, resident.id, 200, "by-id")
    assert ledger.balance(resident.id) == 200
    assert ledger.balance(resident) == 200


def test_a_resident_spends_at_the_shop_down_to_exactly_zero(accounts):
    issuer, resident, shop = accounts
    award(issuer, resident, 300, "a")
    spend(resident, shop, 100, "s1")
    spend(resident, shop, 200, "s2")
    assert ledger.balance(resident) == 0
    assert ledger.balance(shop) == 300
    assert ledger.verify().ok


def test_a_resident_cannot_go_below_zero_and_nothing_is_written(accounts):
    issuer, resident, shop = accounts
    award(issuer, resident, 300, "a")
    before = snapshot()
    with pytest.raises(ledger.InsufficientPoints) as caught:
        spend(resident, shop, 301, "too-much")
    assert caught.value.details == {"account_id": resident.id, "balance": 300, "needed": 301}
    assert snapshot() == before
    assert Transfer.get_or_none(Transfer.idempotency_key == "too-much") is None
    # A refused request does not use up its key: the same key works once there is enough.
    award(issuer, resident, 1, "a2")
    t = spend(resident, shop, 301, "too-much")
    assert ledger.balance(resident) == 0
    assert t.idempotency_key == "too-much"
    assert ledger.verify().ok


def test_a_resident_with_nothing_cannot_spend_anything(accounts):
    _, resident, shop = accounts
    before = snapshot()
    with pytest.raises(ledger.InsufficientPoints):
        spend(resident, shop, 1, "s")
    assert snapshot() == before


def test_a_shop_cannot_go_below_zero(accounts):
    issuer, resident, shop = accounts
    award(issuer, resident, 500, "a")
    spend(resident, shop, 200, "s")
    before = snapshot()
    with pytest.raises(ledger.InsufficientPoints):
        ledger.transfer(shop, resident, 201, kind="adjustment", actor="staff:1", idempotency_key="refund")
    assert snapshot() == before
    ledger.transfer(shop, resident, 200, kind="adjustment", actor="staff:1", idempotency_key="refund")
    assert ledger.balance(shop) == 0


def test_only_issuers_may_go_negative(accounts):
    issuer, resident, _ = accounts
    award(issuer, resident, ledger.MAX_AMOUNT, "big-1")
    award(issuer, resident, ledger.MAX_AMOUNT, "big-2")
    assert ledger.balance(issuer) == -2 * ledger.MAX_AMOUNT
    assert ledger.verify().ok


def test_a_transfer_with_several_legs_is_posted_atomically(accounts):
    issuer, resident, shop = accounts
    other = ledger.open_account("resident:2", "resident")
    t = ledger.post_transfer(
        "award", [(issuer, -300), (resident, 100), (other, 200)], actor="staff:1", idempotency_key="split"
    )
    assert {e.account_id: e.amount for e in t.entries} == {issuer.id: -300, resident.id: 100, other.id: 200}
    assert (ledger.balance(resident), ledger.balance(other)) == (100, 200)
    # One overdrawing leg refuses the whole transfer, including legs already applied before it.
    before = snapshot()
    with pytest.raises(ledger.InsufficientPoints):
        ledger.post_transfer(
            "redeem", [(resident, -100), (other, -201), (shop, 301)], actor="c", idempotency_key="multi"
        )
    assert snapshot() == before
    assert ledger.verify().ok


# --- idempotency -------------------------------------------------------------------------------


def test_replaying_a_key_returns_the_same_transfer_and_writes_nothing(accounts):
    issuer, resident, shop = accounts
    first = award(issuer, resident, 300, "award-42", memo="garden")
    before = snapshot()
    again = award(issuer, resident, 300, "award-42", memo="garden")
    assert again.id == first.id
    assert snapshot() == before
    assert ledger.balance(resident) == 300

    paid = spend(resident, shop, 300, "pay-1")
    before = snapshot()
    # The replay is answered even though the balance could not pay it a second time.
    assert spend(resident, shop, 300, "pay-1").id == paid.id
    assert snapshot() == before


def test_replay_with_the_legs_in_another_order_is_the_same_request(accounts):
    issuer, resident, _ = accounts
    t = ledger.post_transfer("award", [(issuer, -100), (resident, 100)], actor="s", idempotency_key="k")
    before = snapshot()
    again = ledger.post_transfer(
        "award", [(resident.id, 100), (issuer.id, -100)], actor="s", idempotency_key="k"
    )
    assert again.id == t.id
    assert snapshot() == before


@pytest.mark.parametrize(
    "change",
    [
        {"amount": 301},
        {"memo": "something else"},
        {"actor": "staff:2"},
        {"kind": "adjustment"},
        {"to_other": True},
    ],
)
def test_the_same_key_with_different_content_is_a_conflict(accounts, change):
    issuer, resident, _ = accounts
    other = ledger.open_account("resident:2", "resident")
    first = award(issuer, resident, 300, "k", memo="garden")
    before = snapshot()
    with pytest.raises(ledger.IdempotencyConflict) as caught:
        ledger.transfer(
            issuer,
            other if change.get("to_other") else resident,
            change.get("amount", 300),
            kind=change.get("kind", "award"),
            memo=change.get("memo", "garden"),
            actor=change.get("actor", "staff:1"),
            idempotency_key="k",
        )
    assert caught.value.details == {"transfer_id": first.id}
    assert snapshot() == before


# --- refused transfers -------------------------------------------------------------------------


def test_a_single_leg_is_not_a_transfer(accounts):
    issuer, resident, _ = accounts
    before = snapshot()
    with pytest.raises(ledger.InvalidTransfer):
        ledger.post_transfer("award", [(resident, 100)], actor="s", idempotency_key="one-leg")
    with pytest.raises(ledger.InvalidTransfer):
        ledger.post_transfer("award", [], actor="s", idempotency_key="no-legs")
    # Two legs on the same account merge into one (or none).
    with pytest.raises(ledger.InvalidTransfer):
        ledger.transfer(resident, resident, 100, kind="award", actor="s", idempotency_key="self")
    with pytest.raises(ledger.InvalidTransfer):
        ledger.post_transfer(
            "award", [(issuer, -100), (issuer, -100), (resident, 200), (resident, -200)],
            actor="s", idempotency_key="merged",
        )
    assert snapshot() == before


def test_legs_must_sum_to_zero(accounts):
    issuer, resident, shop = accounts
    before = snapshot()
    with pytest.raises(ledger.InvalidTransfer):
        ledger.post_transfer("award", [(issuer, -100), (resident, 101)], actor="s", idempotency_key="k1")
    with pytest.raises(ledger.InvalidTransfer):
        ledger.post_transfer("award", [(issuer, 100), (resident, 100)], actor="s", idempotency_key="k2")
    with pytest.raises(ledger.InvalidTransfer):
        ledger.post_transfer(
            "award", [(issuer, -300), (resident, 100), (shop, 100)], actor="s", idempotency_key="k3"
        )
    assert snapshot() == before


def test_zero_and_invalid_amounts_are_refused(accounts):
    issuer, resident, shop = accounts
    before = snapshot()
    # A zero amount is refused as an amount (AmountNotPositive), before any transfer rule.
    with pytest.raises(ledger.AmountNotPositive):
        award(issuer, resident, 0, "zero")
    with pytest.raises(ledger.AmountNotPositive):
        award(issuer, resident, -5, "negative")
    with pytest.raises(ledger.AmountNotPositive):
        ledger.post_transfer("award", [(issuer, 0), (resident, 0)], actor="s", idempotency_key="z2")
    with pytest.raises(ledger.AmountNotPositive):
        ledger.post_transfer(
            "award", [(issuer, -100), (resident, 100), (shop, 0)], actor="s", idempotency_key="z3"
        )
    with pytest.raises(ledger.AmountNotANumber):
        award(issuer, resident, 1.5, "float")
    with pytest.raises(ledger.AmountNotANumber):
        award(issuer, resident, "150", "text")
    with pytest.raises(ledger.AmountOutOfRange):
        award(issuer, resident, ledger.MAX_AMOUNT + 1, "huge")
    assert snapshot() == before


def test_no_entry_carries_more_than_the_maximum_amount(accounts):
    issuer, resident, _ = accounts
    before = snapshot()
    top = ledger.MAX_AMOUNT
    try:
        with pytest.raises(ledger.InvalidAmount):
            ledger.post_transfer(
                "award", [(issuer, -top), (issuer, -top), (resident, top), (resident, top)],
                actor="s", idempotency_key="merged-too-big",
            )
    finally:
        assert snapshot() == before


def test_unknown_kinds_and_malformed_legs_are_invalid_transfers(accounts):
    issuer, resident, _ = accounts
    before = snapshot()
    with pytest.raises(ledger.InvalidTransfer):
        ledger.transfer(issuer, resident, 100, kind="gift", actor="s", idempotency_key="k")
    with pytest.raises(ledger.InvalidTransfer):
        ledger.post_transfer("award", [("1", -100), (resident, 100)], actor="s", idempotency_key="k")
    with pytest.raises(ledger.InvalidTransfer):
        ledger.post_transfer("award", [(True, -100), (resident, 100)], actor="s", idempotency_key="k")
    assert snapshot() == before


def test_an_unknown_account_is_refused_and_nothing_is_written(accounts):
    issuer, resident, _ = accounts
    award(issuer, resident, 500, "a")
    before = snapshot()
    missing = 10_000
    with pytest.raises(ledger.UnknownAccount):
        award(issuer, missing, 100, "to-nobody")  # the issuer's leg is applied first, then rolled back
    with pytest.raises(ledger.UnknownAccount):
        spend(missing, resident, 100, "from-nobody")
    with pytest.raises(ledger.UnknownAccount):
        ledger.balance(missing)
    assert ledger.history(missing) == []
    assert snapshot() == before
    assert ledger.verify().ok


# --- reversals ---------------------------------------------------------------------------------


def test_a_reversal_undoes_a_transfer_once(accounts):
    issuer, resident, _ = accounts
    t = award(issuer, resident, 500, "a")
    r = ledger.reverse(t, "awarded twice by mistake", "staff:2")
    assert r.kind == "reversal"
    assert r.reverses_id == t.id
    assert r.memo == "awarded twice by mistake"
    assert r.actor == "staff:2"
    assert {e.account_id: e.amount for e in r.entries} == {issuer.id: 500, resident.id: -500}
    assert ledger.balance(resident) == 0
    assert ledger.balance(issuer) == 0

    before = snapshot()
    # The same request again is a replay: same reversal, nothing written.
    assert ledger.reverse(t, "awarded twice by mistake", "staff:2").id == r.id
    assert ledger.reverse(t.id, "awarded twice by mistake", "staff:2").id == r.id
    # Any other request to reverse it again is refused.
    with pytest.raises(ledger.AlreadyReversed):
        ledger.reverse(t, "another reason", "staff:2")
    with pytest.raises(ledger.AlreadyReversed):
        ledger.reverse(t, "awarded twice by mistake", "staff:3")
    with pytest.raises(ledger.AlreadyReversed):
        ledger.reverse(t, "awarded twice by mistake", "staff:2", idempotency_key="fresh-key")
    assert snapshot() == before
    assert ledger.verify().ok


def test_a_reversal_with_its_own_key_replays_and_blocks_the_default_key(accounts):
    issuer, resident, _ = accounts
    t = award(issuer, resident, 500, "a")
    r = ledger.reverse(t, "mistake", "staff:1", idempotency_key="undo-1")
    before = snapshot()
    assert ledger.reverse(t, "mistake", "staff:1", idempotency_key="undo-1").id == r.id
    with pytest.raises(ledger.AlreadyReversed):
        ledger.reverse(t, "mistake", "staff:1")
    # A different request under the reversal's own key is an idempotency conflict.
    with pytest.raises((ledger.IdempotencyConflict, ledger.AlreadyReversed)):
        ledger.reverse(t, "other reason", "staff:1", idempotency_key="undo-1")
    assert snapshot() == before


def test_a_reversal_cannot_be_reversed(accounts):
    issuer, resident, _ = accounts
    t = award(issuer, resident, 500, "a")
    r = ledger.reverse(t, "mistake", "staff:1")
    before = snapshot()
    with pytest.raises(ledger.NotReversible):
        ledger.reverse(r, "undo the undo", "staff:1")
    with pytest.raises(ledger.NotReversible):
        ledger.reverse(r.id, "undo the undo", "staff:1")
    assert snapshot() == before


def test_reversing_an_unknown_transfer_is_invalid(accounts):
    before = snapshot()
    with pytest.raises(ledger.InvalidTransfer):
        ledger.reverse(424242, "nothing", "staff:1")
    assert snapshot() == before


def test_a_reversal_that_would_overdraw_the_resident_is_refused(accounts):
    issuer, resident, shop = accounts
    t = award(issuer, resident, 500, "a")
    spend(resident, shop, 300, "s")
    before = snapshot()
    with pytest.raises(ledger.InsufficientPoints):
        ledger.reverse(t, "mistake", "staff:1")
    assert snapshot() == before
    assert not Transfer.select().where(Transfer.reverses == t.id).exists()
    # Once the resident holds the points again, the same reversal goes through.
    award(issuer, resident, 300, "b")
    r = ledger.reverse(t, "mistake", "staff:1")
    assert r.reverses_id == t.id
    assert ledger.balance(resident) == 0
    assert ledger.verify().ok


def test_reversing_a_spend_gives_the_points_back(accounts):
    issuer, resident, shop = accounts
    award(issuer, resident, 500, "a")
    s = spend(resident, shop, 200, "s")
    ledger.reverse(s, "goods returned", "counter:1")
    assert (ledger.balance(resident), ledger.balance(shop)) == (500, 0)
    assert [line.kind for line in ledger.history(resident)] == ["reversal", "redeem", "award"]
    assert ledger.verify().ok


# --- append-only -------------------------------------------------------------------------------


@pytest.fixture
def posted(accounts):
    issuer, resident, shop = accounts
    t = award(issuer, resident, 500, "a", memo="original")
    spend(resident, shop, 100, "s")
    return t, Entry.get((Entry.transfer == t.id) & (Entry.account == resident.id))


@pytest.mark.parametrize("model", [Entry, Transfer])
def test_the_models_refuse_to_change_or_delete_rows(posted, model):
    t, e = posted
    row = model.get_by_id(e.id if model is Entry else t.id)
    before = snapshot()
    if model is Entry:
        row.amount = 50_000
    else:
        row.memo = "forged"
    with pytest.raises(ledger.AppendOnly):
        row.save()
    with pytest.raises(ledger.AppendOnly):
        row.save(only=[model.id])
    with pytest.raises(ledger.AppendOnly):
        row.delete_instance()
    with pytest.raises(ledger.AppendOnly):
        model.update(id=row.id).where(model.id == row.id).execute()
    with pytest.raises(ledger.AppendOnly):
        model.delete().where(model.id == row.id).execute()
    with pytest.raises(ledger.AppendOnly):
        model.delete_by_id(row.id)
    with pytest.raises(ledger.AppendOnly):
        model.set_by_id(row.id, {"id": row.id})
    with pytest.raises(ledger.AppendOnly):
        model.bulk_update([row], fields=[model.id])
    with pytest.raises(ledger.AppendOnly):
        model.replace(id=row.id).execute()
    assert snapshot() == before
    assert Entry.get_by_id(e.id).amount == 500
    assert Transfer.get_by_id(t.id).memo == "original"
    assert ledger.verify().ok


RAW_WRITES = [
    ("entry", "UPDATE entry SET amount = 50000 WHERE id = {entry}"),
    ("entry", "UPDATE entry SET balance_after = 0"),
    ("entry", "DELETE FROM entry WHERE id = {entry}"),
    ("entry", "DELETE FROM entry"),
    ("transfer", "UPDATE transfer SET memo = 'forged' WHERE id = {transfer}"),
    ("transfer", "DELETE FROM transfer WHERE id = {transfer}"),
    ("transfer", "DELETE FROM transfer"),
]


@pytest.mark.parametrize(("table", "sql"), RAW_WRITES)
def test_the_database_refuses_raw_updates_and_deletes(db, posted, table, sql):
    t, e = posted
    before = snapshot()
    with pytest.raises(peewee.DatabaseError, match="append-only"), db.atomic():
        db.execute_sql(sql.format(entry=e.id, transfer=t.id))
    # Outside a transaction too (autocommit).
    with pytest.raises(peewee.DatabaseError, match="append-only"):
        db.execute_sql(sql.format(entry=e.id, transfer=t.id))
    assert snapshot() == before
    assert Entry.get_by_id(e.id).amount == 500
    assert Transfer.get_by_id(t.id).memo == "original"
    assert ledger.verify().ok


def test_an_upsert_cannot_overwrite_an_entry(db, posted):
    _, e = posted
    row = Entry.select().where(Entry.id == e.id).dicts().get()
    with pytest.raises(peewee.DatabaseError, match="append-only"), db.atomic():
        Entry.insert({**row, "amount": 50_000}).on_conflict(
            conflict_target=[Entry.id], update={Entry.amount: 50_000}
        ).execute()
    assert Entry.get_by_id(e.id).amount == 500
    assert ledger.verify().ok


@pytest.mark.parametrize("how", ["model", "raw"])
def test_insert_or_replace_cannot_overwrite_an_entry_on_sqlite(db, posted, how):
    if not ledger.is_sqlite():
        pytest.skip("PostgreSQL has no INSERT OR REPLACE")
    _, e = posted
    row = Entry.select().where(Entry.id == e.id).dicts().get()
    try:
        with db.atomic():
            if how == "model":
                Entry.insert({**row, "amount": 50_000}).on_conflict_replace().execute()
            else:
                db.execute_sql(
                    "INSERT OR REPLACE INTO entry (id, transfer_id, account_id, seq, amount, balance_after, "
                    "prev_hash, hash) SELECT id, transfer_id, account_id, seq, 50000, balance_after, "
                    f"prev_hash, hash FROM entry WHERE id = {e.id}"
                )
    except (peewee.DatabaseError, ledger.AppendOnly):
        pass
    assert Entry.get_by_id(e.id).amount == 500


def test_postgresql_refuses_truncate(db, posted):
    if not ledger.is_postgresql():
        pytest.skip("SQLite has no TRUNCATE")
    before = snapshot()
    for table in ("entry", "transfer"):
        with pytest.raises(peewee.DatabaseError, match="append-only"), db.atomic():
            db.execute_sql(f"TRUNCATE {table} CASCADE")
    assert snapshot() == before


# --- balance and history -----------------------------------------------------------------------


def test_history_is_newest_first_with_kind_memo_amount_and_balance(accounts):
    issuer, resident, shop = accounts
    a = award(issuer, resident, 500, "a", memo="cleaning")
    s = spend(resident, shop, 150, "s", memo="rice")
    r = ledger.reverse(s, "wrong item", "counter:1")
    lines = ledger.history(resident)
    assert [(x.transfer_id, x.kind, x.memo, x.amount, x.balance_after) for x in lines] == [
        (r.id, "reversal", "wrong item", 150, 500),
        (s.id, "redeem", "rice", -150, 350),
        (a.id, "award", "cleaning", 500, 500),
    ]
    assert [x.cursor for x in lines] == [3, 2, 1]
    assert all(isinstance(x, ledger.HistoryLine) for x in lines)
    assert lines[0].created_at >= lines[-1].created_at
    assert ledger.history(resident, limit=1) == lines[:1]
    assert ledger.history(resident, before=lines[0].cursor) == lines[1:]
    assert ledger.history(resident, before=1) == []
    assert [x.amount for x in ledger.history(issuer)] == [-500]


def test_keyset_pagination_walks_the_whole_history_without_gaps_or_duplicates(accounts):
    issuer, resident, shop = accounts
    expected = 0
    amounts = []
    for i in range(37):
        if i % 3 == 2:
            spend(resident, shop, 7, f"s{i}", memo=f"spend {i}")
            amounts.append(-7)
        else:
            award(issuer, resident, 10 + i, f"a{i}", memo=f"award {i}")
            amounts.append(10 + i)
        expected += amounts[-1]
    assert ledger.balance(resident) == expected

    for page_size in (1, 5, 10, 36, 37, 100):
        seen, cursor = [], None
        while True:
            page = ledger.history(resident, limit=page_size, before=cursor)
            if not page:
                break
            assert len(page) <= page_size
            seen.extend(page)
            cursor = page[-1].cursor
        assert [x.cursor for x in seen] == list(range(37, 0, -1))
        assert [x.amount for x in seen] == amounts[::-1]
        assert seen[0].balance_after == expected
        running = 0
        for line in reversed(seen):
            running += line.amount
            assert line.balance_after == running


def test_balance_matches_the_entries_after_many_postings(accounts):
    issuer, resident, shop = accounts
    others = [ledger.open_account(f"resident:{n}", "resident") for n in range(2, 6)]
    for n, other in enumerate(others):
        award(issuer, other, 1000 * (n + 1), f"a{n}")
        spend(other, shop, 333, f"s{n}")
    ledger.reverse(Transfer.get(Transfer.idempotency_key == "s0"), "refund", "c")
    for account in [issuer, resident, shop, *others]:
        total = Entry.select(peewee.fn.SUM(Entry.amount)).where(Entry.account == account.id).scalar() or 0
        assert ledger.balance(account) == total
    assert ledger.balance(shop) == 333 * 3
    assert sum(ledger.balance(a) for a in [issuer, resident, shop, *others]) == 0
    report = ledger.verify()
    assert report.ok, report.problems
    assert (report.accounts, report.transfers, report.entries) == (7, 9, 18)


# --- hostile text ------------------------------------------------------------------------------

HOSTILE = [
    "'); DROP TABLE entry; --",
    "\"; DELETE FROM transfer WHERE '1'='1",
    "Robert'); UPDATE account SET balance = 1000000; --",
    "%s %(memo)s {} {0} ? $1 \\x00 \\",
    "🎉👨‍👩‍👧‍👦 积分超市 ✓",
    "\u202eevil\u202c \u200fשלום\u200f مرحبا",
    "e\u0301 vs \u00e9",  # decomposed and composed: stored as given, never normalised
    "line one\nline two\r\n\ttabbed",
    "\ufeffzero\u200bwidth\u2060",
    "   leading and trailing   ",
    "<script>alert(1)</script>",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_memos_and_keys_are_stored_verbatim(accounts, text):
    issuer, resident, _ = accounts
    t = award(issuer, resident, 100, text, memo=text, actor=text[:100])
    stored = Transfer.get_by_id(t.id)
    assert stored.memo == text
    assert stored.idempotency_key == text
    assert stored.actor == text[:100]
    assert ledger.history(resident)[0].memo == text
    assert Transfer.get(Transfer.idempotency_key == text).id == t.id
    # The key still identifies the request.
    assert award(issuer, resident, 100, text, memo=text, actor=text[:100]).id == t.id
    with pytest.raises(ledger.IdempotencyConflict):
        award(issuer, resident, 101, text, memo=text, actor=text[:100])
    r = ledger.reverse(t, text, "staff:1")
    assert ledger.history(resident)[0].memo == text
    assert Transfer.get_by_id(r.id).memo == text
    assert set(ledger.db.get_tables()) >= {"account", "transfer", "entry"}
    assert ledger.balance(resident) == 0
    assert ledger.verify().ok


def test_the_longest_allowed_memo_and_key_are_stored(accounts):
    issuer, resident, _ = accounts
    memo, key = "界" * 500, "🔑" * 200
    t = award(issuer, resident, 100, key, memo=memo, actor="a" * 100)
    stored = Transfer.get_by_id(t.id)
    assert (stored.memo, stored.idempotency_key, stored.actor) == (memo, key, "a" * 100)
    assert ledger.verify().ok


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("memo", "x" * 10_000),
        ("memo", "x" * 501),
        ("memo", "before\x00after"),
        ("memo", "\x00"),
        ("memo", None),
        ("memo", b"bytes"),
        ("key", "k" * 201),
        ("key", "k" * 10_000),
        ("key", "key\x00"),
        ("key", ""),
        ("key", None),
        ("key", 12345),
        ("actor", "a" * 101),
        ("actor", "staff\x00:1"),
        ("actor", None),
    ],
)
def test_unstorable_memos_keys_and_actors_are_refused_and_nothing_is_written(accounts, field, value):
    issuer, resident, _ = accounts
    award(issuer, resident, 100, "first")
    before = snapshot()
    kwargs = {"memo": "m", "actor": "staff:1", "key": "k"} | {field: value}
    with pytest.raises(ledger.InvalidMemo):
        award(issuer, resident, 100, kwargs["key"], memo=kwargs["memo"], actor=kwargs["actor"])
    assert snapshot() == before


def test_an_unstorable_reversal_reason_is_refused(accounts):
    issuer, resident, _ = accounts
    t = award(issuer, resident, 100, "a")
    before = snapshot()
    with pytest.raises(ledger.InvalidMemo):
        ledger.reverse(t, "r" * 10_000, "staff:1")
    with pytest.raises(ledger.InvalidMemo):
        ledger.reverse(t, "why\x00", "staff:1")
    assert snapshot() == before
    assert ledger.reverse(t, "r" * 500, "staff:1").memo == "r" * 500


@pytest.mark.parametrize("field", ["memo", "key", "actor"])
def test_lone_surrogates_are_refused_as_invalid_memo(accounts, field):
    issuer, resident, _ = accounts
    before = snapshot()
    kwargs = {"memo": "m", "actor": "staff:1", "key": "k"} | {field: "bad \ud800 text"}
    try:
        with pytest.raises(ledger.InvalidMemo):
            award(issuer, resident, 100, kwargs["key"], memo=kwargs["memo"], actor=kwargs["actor"])
    finally:
        assert snapshot() == before


def test_a_prepared_query_runs_again_with_other_values(accounts):
    from ledger.db import prepared

    issuer, alice, _shop = accounts
    ledger.transfer(issuer, alice, 250, kind="award", actor="t", idempotency_key="p1")
    by_code = prepared(lambda code, kind: Account.select().where((Account.code == code) & (Account.kind == kind)))
    found = by_code(alice.code, Account.RESIDENT)
    assert [(a.id, a.balance) for a in found] == [(alice.id, 250)]
    assert by_code(alice.code, Account.SHOP) == [] and by_code("nobody", Account.RESIDENT) == []
    # A value used twice, a date, and rows as tuples.
    moved = prepared(lambda account, since: Entry.select(Entry.amount).where(
        ((Entry.account == account) | (Entry.account == account)) & (Entry.id > 0)
        & (Entry.transfer.in_(Transfer.select(Transfer.id).where(Transfer.created_at > since)))).tuples())
    assert moved(alice.id, ledger.models.utcnow() - datetime.timedelta(hours=1)) == [(250,)]
    assert moved(alice.id, ledger.models.utcnow() + datetime.timedelta(hours=1)) == []
    with pytest.raises(ValueError):  # a value the query never uses is a mistake
        prepared(lambda code, unused: Account.select().where(Account.code == code))("x", 1)


def test_a_row_read_by_its_key_and_through_a_foreign_key(accounts):
    issuer, alice, _shop = accounts
    moved = ledger.transfer(issuer, alice, 250, kind="award", actor="t", idempotency_key="k1")
    assert Account.by_id(alice.id).balance == 250 and Account.by_id(10**9) is None
    assert Account.by_id(None) is None and Account.get_by_id(alice.id).code == alice.code
    with pytest.raises(Account.DoesNotExist):
        Account.get_by_id(10**9)
    entry = Entry.select().where(Entry.account == alice.id).get()
    assert (entry.transfer.id, entry.account.code) == (moved.id, alice.code)
    assert entry.account is entry.account  # followed once, then kept
    orphan = Entry(transfer=moved.id, account=10**9)
    with pytest.raises(Account.DoesNotExist):
        _ = orphan.account


def test_a_prepared_write_returns_the_new_id_or_the_rows_changed(accounts):
    from ledger.db import prepared

    add = prepared(lambda code, kind, now: Account.insert(code=code, kind=kind, created_at=now))
    first, second = add("p-1", Account.SHOP, ledger.models.utcnow()), add("p-2", Account.SHOP, ledger.models.utcnow())
    assert second != first and [a.code for a in Account.select().where(Account.id.in_([first, second]))
                                .order_by(Account.id)] == ["p-1", "p-2"]
    rename = prepared(lambda name, kind: Account.update(name=name).where(Account.kind == kind))
    assert rename("a shop", Account.SHOP) == Account.select().where(Account.kind == Account.SHOP).count() >= 3
    assert rename("none", "no such kind") == 0
    with pytest.raises(ValueError, match="created_at"):  # compiled once, utcnow() would be every row's time
        prepared(lambda code, kind: Account.insert(code=code, kind=kind))("p-3", Account.SHOP)
