"""`flask --app web ledger verify` on a ledger tampered with behind the services' back."""

import datetime

import peewee
import pytest
from upgrades import app_before, upgrade

import ledger
from ledger import Account, Entry, Transfer
from ledger.postings import entry_hash, transfer_digest
from web import create_app


@pytest.fixture
def book(app):
    """A small ledger posted through the services: two residents, a shop, awards, spends, a reversal."""
    with ledger.db.connection_context():
        issuer = ledger.open_account("issuer:1", "issuer")
        ada = ledger.open_account("resident:ada", "resident")
        bo = ledger.open_account("resident:bo", "resident")
        shop = ledger.open_account("shop:1", "shop")

        def post(source, destination, amount, kind, key, memo=""):
            return ledger.transfer(
                source, destination, amount, kind=kind, memo=memo, actor="staff:1", idempotency_key=key
            )

        transfers = {
            "award-ada": post(issuer, ada, 500, "award", "t1", "cleaning"),
            "award-bo": post(issuer, bo, 300, "award", "t2", "garden"),
            "spend-ada": post(ada, shop, 120, "redeem", "t3", "rice"),
            "award-ada-2": post(issuer, ada, 50, "award", "t4", "tutoring"),
            "spend-bo": post(bo, shop, 100, "redeem", "t5", "oil"),
        }
        transfers["reversal"] = ledger.reverse(transfers["spend-bo"], "returned", "counter:1")
        assert ledger.verify().ok
    return {"issuer": issuer, "ada": ada, "bo": bo, "shop": shop, **transfers}


def entry_of(transfer, account):
    return Entry.get((Entry.transfer == transfer.id) & (Entry.account == account.id))


def tamper(*statements, drop_triggers=True):
    """Run raw SQL with the append-only triggers out of the way, as someone with database access could."""
    with ledger.db.connection_context(), ledger.db.atomic():
        if drop_triggers:
            if ledger.is_postgresql():
                for table in ("entry", "transfer"):
                    ledger.db.execute_sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            else:
                for table in ("entry", "transfer"):
                    for action in ("update", "delete"):
                        ledger.db.execute_sql(f"DROP TRIGGER {table}_no_{action}")
        for sql in statements:
            ledger.db.execute_sql(sql)


def verify_cli(runner):
    if not ledger.db.is_closed():
        ledger.db.close()
    return runner.invoke(args=["ledger", "verify"])


def test_an_untampered_ledger_verifies(runner, book):
    result = verify_cli(runner)
    assert result.exit_code == 0, result.output
    assert "ledger OK: 4 accounts, 6 transfers, 12 entries" in result.output
    assert result.stderr == ""


def test_the_triggers_refuse_tampering_while_they_are_in_place(runner, book):
    e = entry_of(book["award-ada"], book["ada"])
    with pytest.raises(peewee.DatabaseError, match="append-only"):
        tamper(f"UPDATE entry SET amount = 5000 WHERE id = {e.id}", drop_triggers=False)
    assert verify_cli(runner).exit_code == 0


def test_a_changed_entry_amount_is_named(runner, book):
    ada, t = book["ada"], book["award-ada"]
    e = entry_of(t, ada)
    tamper(f"UPDATE entry SET amount = 5000 WHERE id = {e.id}")
    result = verify_cli(runner)
    assert result.exit_code == 1, result.output
    where = f"account {ada.id} (resident:ada) entry {e.id} (seq 1)"
    assert f"{where}: balance_after 500 but entries sum to 5000" in result.stderr
    assert f"{where}: hash does not match its content (transfer {t.id})" in result.stderr
    assert f"transfer {t.id}: 2 entries summing to 4500, not a balanced transfer" in result.stderr
    assert f"account {ada.id} (resident:ada): cached balance 430 but entries sum to 4930" in result.stderr
    assert "problem(s)" in result.stdout
    # Nothing about the accounts that were not touched.
    assert f"account {book['bo'].id} " not in result.stderr
    assert f"account {book['shop'].id} " not in result.stderr


def test_an_entry_rewritten_with_a_recomputed_hash_still_breaks_the_chain(runner, book):
    """Someone who knows the hash recipe rewrites one entry consistently; the next one still points
    at the old hash."""
    ada, t = book["ada"], book["award-ada"]
    with ledger.db.connection_context():
        e = entry_of(t, ada)
        forged_hash = entry_hash(e.prev_hash, t.id, t.digest, ada.id, e.seq, 5000, 5000)
    tamper(f"UPDATE entry SET amount = 5000, balance_after = 5000, hash = '{forged_hash}' WHERE id = {e.id}")
    result = verify_cli(runner)
    assert result.exit_code == 1, result.output
    with ledger.db.connection_context():
        following = Entry.get((Entry.account == ada.id) & (Entry.seq == 2))
    where = f"account {ada.id} (resident:ada) entry {following.id} (seq 2)"
    assert f"{where}: chain broken, previous hash does not match" in result.stderr
    assert f"transfer {t.id}: 2 entries summing to 4500" in result.stderr


def test_a_deleted_entry_is_named(runner, book):
    ada, t = book["ada"], book["spend-ada"]
    e = entry_of(t, ada)
    assert e.seq == 2
    tamper(f"DELETE FROM entry WHERE id = {e.id}")
    result = verify_cli(runner)
    assert result.exit_code == 1, result.output
    with ledger.db.connection_context():
        following = Entry.get((Entry.account == ada.id) & (Entry.seq == 3))
    where = f"account {ada.id} (resident:ada) entry {following.id} (seq 3)"
    assert f"{where}: expected seq 2, an entry is missing or forged" in result.stderr
    assert f"{where}: chain broken, previous hash does not match" in result.stderr
    assert f"{where}: balance_after 430 but entries sum to 550" in result.stderr
    assert f"transfer {t.id}: 1 entries summing to 120, not a balanced transfer" in result.stderr
    assert f"account {ada.id} (resident:ada): cached balance 430 but entries sum to 550" in result.stderr


def test_a_deleted_last_entry_is_named(runner, book):
    ada, t = book["ada"], book["award-ada-2"]
    e = entry_of(t, ada)
    tamper(f"DELETE FROM entry WHERE id = {e.id}")
    result = verify_cli(runner)
    assert result.exit_code == 1, result.output
    assert f"account {ada.id} (resident:ada): head hash does not match its last entry" in result.stderr
    assert f"account {ada.id} (resident:ada): cached balance 430 but entries sum to 380" in result.stderr
    assert f"transfer {t.id}: 1 entries summing to -50, not a balanced transfer" in result.stderr


def test_a_deleted_transfer_with_its_entries_is_named(runner, book):
    bo, shop, t, r = book["bo"], book["shop"], book["spend-bo"], book["reversal"]
    # The reversal points at the spend; drop the reversal, its entries, then the spend's entries.
    tamper(
        f"DELETE FROM entry WHERE transfer_id = {r.id}",
        f"DELETE FROM transfer WHERE id = {r.id}",
        f"DELETE FROM entry WHERE transfer_id = {t.id}",
        f"DELETE FROM transfer WHERE id = {t.id}",
    )
    result = verify_cli(runner)
    assert result.exit_code == 1, result.output
    assert f"account {bo.id} (resident:bo): version 3 but 1 entries" in result.stderr
    assert f"account {shop.id} (shop:1): version 3 but 1 entries" in result.stderr
    assert f"account {bo.id} (resident:bo): head hash does not match its last entry" in result.stderr


def test_a_forged_entry_is_named(runner, book):
    """A forged credit for a resident, with its own transfer, chained correctly onto the account."""
    bo = book["bo"]
    with ledger.db.connection_context():
        head = Account.get_by_id(bo.id)
        template = Transfer.get_by_id(book["award-bo"].id)
        template.id, template.idempotency_key, template.memo = None, "forged-1", "free points"
        digest = transfer_digest(template)
    created = template.created_at.isoformat(sep=" ")
    tamper(
        "INSERT INTO transfer (idempotency_key, kind, memo, actor, created_at, fingerprint, digest) "
        f"VALUES ('forged-1', 'award', 'free points', 'staff:1', '{created}', '{template.fingerprint}', "
        f"'{digest}')"
    )
    with ledger.db.connection_context():
        forged = Transfer.get(Transfer.idempotency_key == "forged-1")
        seq, amount = head.version + 1, 100_000
        forged_hash = entry_hash(head.head_hash, forged.id, digest, bo.id, seq, amount, head.balance + amount)
    tamper(
        "INSERT INTO entry (transfer_id, account_id, seq, amount, balance_after, prev_hash, hash) "
        f"VALUES ({forged.id}, {bo.id}, {seq}, {amount}, {head.balance + amount}, '{head.head_hash}', "
        f"'{forged_hash}')",
        drop_triggers=False,
    )
    result = verify_cli(runner)
    assert result.exit_code == 1, result.output
    assert f"transfer {forged.id}: 1 entries summing to 100000, not a balanced transfer" in result.stderr
    assert f"account {bo.id} (resident:bo): cached balance 300 but entries sum to 100300" in result.stderr
    assert f"account {bo.id} (resident:bo): version 3 but 4 entries" in result.stderr
    assert f"account {bo.id} (resident:bo): head hash does not match its last entry" in result.stderr


def test_a_forged_entry_in_an_existing_transfer_is_named(runner, book):
    shop, t = book["shop"], book["spend-ada"]
    with ledger.db.connection_context():
        head = Account.get_by_id(shop.id)
    tamper(
        "INSERT INTO entry (transfer_id, account_id, seq, amount, balance_after, prev_hash, hash) "
        f"VALUES ({t.id}, {shop.id}, {head.version + 1}, 77, {head.balance + 77}, '{head.head_hash}', "
        f"'{'f' * 64}')",
        drop_triggers=False,
    )
    result = verify_cli(runner)
    assert result.exit_code == 1, result.output
    with ledger.db.connection_context():
        forged = Entry.get((Entry.account == shop.id) & (Entry.seq == head.version + 1))
    assert (
        f"account {shop.id} (shop:1) entry {forged.id} (seq {forged.seq}): hash does not match its content "
        f"(transfer {t.id})" in result.stderr
    )
    assert f"transfer {t.id}: 3 entries summing to 77, not a balanced transfer" in result.stderr


def test_a_changed_transfer_memo_is_named(runner, book):
    t = book["spend-ada"]
    tamper(f"UPDATE transfer SET memo = 'caviar' WHERE id = {t.id}")
    result = verify_cli(runner)
    assert result.exit_code == 1, result.output
    assert f"transfer {t.id}: content does not match its digest" in result.stderr
    # Every entry hash covers its transfer's digest, so both sides of the transfer are named too.
    with ledger.db.connection_context():
        ada_entry, shop_entry = entry_of(t, book["ada"]), entry_of(t, book["shop"])
    mismatch = f"hash does not match its content (transfer {t.id})"
    assert f"entry {ada_entry.id} (seq 2): {mismatch}" in result.stderr
    assert f"entry {shop_entry.id} (seq 1): {mismatch}" in result.stderr
    assert "ledger 3 problem(s)" in result.stdout


def test_a_changed_transfer_memo_with_a_recomputed_digest_is_named_by_its_entries(runner, book):
    ada, shop, t = book["ada"], book["shop"], book["spend-ada"]
    with ledger.db.connection_context():
        stored = Transfer.get_by_id(t.id)
        stored.memo = "caviar"
        digest = transfer_digest(stored)
    tamper(f"UPDATE transfer SET memo = 'caviar', digest = '{digest}' WHERE id = {t.id}")
    result = verify_cli(runner)
    assert result.exit_code == 1, result.output
    assert "content does not match its digest" not in result.stderr
    with ledger.db.connection_context():
        ada_entry, shop_entry = entry_of(t, ada), entry_of(t, shop)
    assert f"account {ada.id} (resident:ada) entry {ada_entry.id} (seq 2): hash does not match its content " \
        f"(transfer {t.id})" in result.stderr
    assert f"account {shop.id} (shop:1) entry {shop_entry.id} (seq 1): hash does not match its content " \
        f"(transfer {t.id})" in result.stderr
    assert len(result.stderr.splitlines()) == 2


def test_a_changed_cached_balance_is_named(runner, book):
    bo = book["bo"]
    tamper(f"UPDATE account SET balance = balance + 1000 WHERE id = {bo.id}", drop_triggers=False)
    result = verify_cli(runner)
    assert result.exit_code == 1, result.output
    assert f"account {bo.id} (resident:bo): cached balance 1300 but entries sum to 300" in result.stderr
    assert "ledger: account balances sum to 1000, not 0" in result.stderr


# --- consistent rewrites, caught by a checkpoint kept outside the database -----------------------


def recompute_everything():
    """What a writer who knows the recipes does after changing amounts or deleting rows (with the
    triggers already out of the way): every
    transfer digest, entry hash, balance and account cache recomputed, so `verify` alone passes."""
    statements = []
    for t in Transfer.select().order_by(Transfer.id):
        statements.append(f"UPDATE transfer SET digest = '{transfer_digest(t)}' WHERE id = {t.id}")
    tamper(*statements, drop_triggers=False)  # the triggers are gone already
    statements = []
    with ledger.db.connection_context():
        digests = {t.id: t.digest for t in Transfer.select()}
        for account in Account.select():
            prev, balance, seq = ledger.models.GENESIS_HASH, 0, 0
            for e in Entry.select().where(Entry.account == account.id).order_by(Entry.seq):
                seq += 1
                balance += e.amount
                new = entry_hash(prev, e.transfer_id, digests[e.transfer_id], account.id, seq, e.amount, balance)
                statements.append(f"UPDATE entry SET seq = {-seq - 1000000} WHERE id = {e.id}")
                statements.append(f"UPDATE entry SET seq = {seq}, balance_after = {balance}, prev_hash = '{prev}', "
                                  f"hash = '{new}' WHERE id = {e.id}")
                prev = new
            statements.append(f"UPDATE account SET balance = {balance}, version = {seq}, head_hash = '{prev}' "
                              f"WHERE id = {account.id}")
    tamper(*statements, drop_triggers=False)


def checkpoint(runner, tmp_path):
    path = tmp_path / "checkpoint.json"
    if not ledger.db.is_closed():
        ledger.db.close()
    made = runner.invoke(args=["ledger", "checkpoint", "--out", str(path)])
    assert made.exit_code == 0, made.output
    return path


def append_forged_transfer(book, amount=1_000_000):
    """A balanced transfer of `amount` from the issuer to bo, chained onto both accounts and their
    caches updated, exactly as the services would have written it (but for the seal)."""
    with ledger.db.connection_context():
        template = Transfer.get_by_id(book["award-bo"].id)
        template.id, template.idempotency_key, template.memo = None, "forged-append", "free points"
        digest = transfer_digest(template)
        created = template.created_at.isoformat(sep=" ")
    tamper("INSERT INTO transfer (idempotency_key, kind, memo, actor, created_at, fingerprint, digest) "
           f"VALUES ('forged-append', 'award', 'free points', 'staff:1', '{created}', '{template.fingerprint}', "
           f"'{digest}')", drop_triggers=False)
    statements = []
    with ledger.db.connection_context():
        forged = Transfer.get(Transfer.idempotency_key == "forged-append")
        for account, leg in ((book["issuer"], -amount), (book["bo"], amount)):
            head = Account.get_by_id(account.id)
            seq, balance = head.version + 1, head.balance + leg
            new = entry_hash(head.head_hash, forged.id, digest, account.id, seq, leg, balance)
            statements += [
                "INSERT INTO entry (transfer_id, account_id, seq, amount, balance_after, prev_hash, hash, seal) "
                f"VALUES ({forged.id}, {account.id}, {seq}, {leg}, {balance}, '{head.head_hash}', '{new}', "
                f"'{ledger.keys.seal(new, b'a guessed key')}')",
                f"UPDATE account SET balance = {balance}, version = {seq}, head_hash = '{new}' WHERE id = {account.id}"]
    tamper(*statements, drop_triggers=False)
    return forged


@pytest.mark.parametrize("rewrite", ["a bigger award", "a deleted redemption", "an appended transfer"])
def test_a_consistent_rewrite_fails_verify_and_the_checkpoint(runner, book, tmp_path, rewrite):
    """Someone who can write to the database and knows every recipe but not the ledger key."""
    kept = checkpoint(runner, tmp_path)
    assert runner.invoke(args=["ledger", "verify", "--against", str(kept)]).exit_code == 0
    with ledger.db.connection_context():
        if rewrite == "a bigger award":
            t = book["award-ada"]
            ids = {e.account_id: e.id for e in Entry.select().where(Entry.transfer == t.id)}
            statements = [f"UPDATE entry SET amount = 1000500 WHERE id = {ids[book['ada'].id]}",
                          f"UPDATE entry SET amount = -1000500 WHERE id = {ids[book['issuer'].id]}"]
        elif rewrite == "a deleted redemption":
            t = book["spend-ada"]
            statements = [f"DELETE FROM entry WHERE transfer_id = {t.id}", f"DELETE FROM transfer WHERE id = {t.id}"]
        else:
            statements = []
    if statements:
        tamper(*statements)
        recompute_everything()
    else:
        t = append_forged_transfer(book)
    result = verify_cli(runner)
    assert result.exit_code == 1
    assert "not sealed with the ledger key" in result.stderr
    assert "balance" not in result.stderr and "chain" not in result.stderr  # the chains alone cannot tell
    if rewrite != "an appended transfer":  # appended after the checkpoint: only the seals tell
        against = runner.invoke(args=["ledger", "verify", "--against", str(kept)])
        assert against.exit_code == 1 and "not the ones checkpointed" in against.stderr


def test_under_another_key_every_entry_is_unsealed_until_vouched_for(app, book, tmp_path):
    """Key rotation: verify under the old key, change LEDGER_KEY, vouch; a rewrite after that is caught."""
    rotated = create_app({"TESTING": True, "DATABASE_URL": app.config["DATABASE_URL"], "SECRET_KEY": "test",
                          "LEDGER_KEY": b"the new key"})
    runner = rotated.test_cli_runner()
    before = verify_cli(runner)
    assert before.exit_code == 1 and before.stderr.count("not sealed with the ledger key") == 12
    assert runner.invoke(args=["ledger", "vouch"], input="n\n").exit_code != 0
    vouched = runner.invoke(args=["ledger", "vouch"], input="y\n")
    assert vouched.exit_code == 0, vouched.output
    assert "12 entries are not sealed with this key" in vouched.output
    assert verify_cli(runner).exit_code == 0
    with ledger.db.connection_context():
        ledger.transfer(book["issuer"], book["bo"], 100, kind="award", actor="staff:1", idempotency_key="new")
    assert verify_cli(runner).exit_code == 0  # sealed with the new key
    tamper(f"UPDATE entry SET amount = 999 WHERE id = {entry_of(book['award-ada'], book['ada']).id}")
    recompute_everything()
    caught = verify_cli(runner)
    assert caught.exit_code == 1 and "stored checkpoint 1:" in caught.stderr
    assert "not the ones checkpointed" in caught.stderr
    refused = runner.invoke(args=["ledger", "vouch", "--yes"])
    assert refused.exit_code != 0 and "nothing was vouched for" in refused.output


def test_deleting_the_stored_checkpoint_leaves_its_entries_unsealed(app, book):
    rotated = create_app({"TESTING": True, "DATABASE_URL": app.config["DATABASE_URL"], "SECRET_KEY": "test",
                          "LEDGER_KEY": b"the new key"})
    runner = rotated.test_cli_runner()
    assert runner.invoke(args=["ledger", "vouch", "--yes"]).exit_code == 0
    with pytest.raises(peewee.DatabaseError, match="append-only"):
        tamper("DELETE FROM checkpoint", drop_triggers=False)
    tamper("DROP TRIGGER IF EXISTS checkpoint_no_delete" if not ledger.is_postgresql()
           else "ALTER TABLE checkpoint DISABLE TRIGGER USER", "DELETE FROM checkpoint", drop_triggers=False)
    result = verify_cli(runner)
    assert result.exit_code == 1 and result.stderr.count("not sealed with the ledger key") == 12


def test_a_forged_or_foreign_checkpoint_is_refused(runner, book, tmp_path):
    kept = checkpoint(runner, tmp_path)
    forged = kept.read_text().replace('"balance": 430', '"balance": 99999')
    (tmp_path / "forged.json").write_text(forged)
    result = runner.invoke(args=["ledger", "verify", "--against", str(tmp_path / "forged.json")])
    assert result.exit_code == 1 and "signature" in result.stderr
    assert runner.invoke(args=["ledger", "checkpoint", "--out", str(kept)]).exit_code != 0  # never overwritten


def test_a_ledger_written_before_seals_is_vouched_for_on_upgrade(empty_db_url, tmp_path):
    """A database migrated up to the release before seals, with a transfer written then; `init-db`
    applies the seals migration and stores a checkpoint for the entries it finds."""
    upgraded = app_before("0015", empty_db_url, tmp_path)
    with ledger.db.connection_context():
        ledger.db.execute_sql("INSERT INTO account (code, kind, name, balance, version, head_hash, created_at) "
                              f"VALUES ('issuer:1', 'issuer', '', -300, 1, '{'0' * 64}', '2026-01-01 00:00:00'), "
                              f"('resident:ada', 'resident', '', 300, 1, '{'0' * 64}', '2026-01-01 00:00:00')")
        transfer = Transfer(idempotency_key="old", kind="award", memo="", actor="staff:1", reverses_id=None,
                            created_at=datetime.datetime(2026, 1, 1), fingerprint="f" * 64)
        digest = transfer_digest(transfer)
        ledger.db.execute_sql("INSERT INTO transfer (idempotency_key, kind, memo, actor, created_at, fingerprint, "
                              f"digest) VALUES ('old', 'award', '', 'staff:1', '2026-01-01 00:00:00', '{'f' * 64}', "
                              f"'{digest}')")
        tid = ledger.db.execute_sql("SELECT id FROM transfer").fetchone()[0]
        for code, amount in (("issuer:1", -300), ("resident:ada", 300)):
            aid = ledger.db.execute_sql(f"SELECT id FROM account WHERE code = '{code}'").fetchone()[0]
            new = entry_hash("0" * 64, tid, digest, aid, 1, amount, amount)
            ledger.db.execute_sql("INSERT INTO entry (transfer_id, account_id, seq, amount, balance_after, "
                                  f"prev_hash, hash) VALUES ({tid}, {aid}, 1, {amount}, {amount}, '{'0' * 64}', "
                                  f"'{new}')")
            ledger.db.execute_sql(f"UPDATE account SET head_hash = '{new}' WHERE id = {aid}")
    runner = upgraded.test_cli_runner()
    if ledger.is_sqlite():  # a backup made before the upgrade still checks out
        kept = runner.invoke(args=["backup", str(tmp_path / "before-seals.db")])
        assert kept.exit_code == 0 and "1 transfers, integrity ok, ledger ok" in kept.output, kept.output
    said = upgrade(upgraded)
    assert "0015_entry_seals" in said and "vouches" in said
    assert verify_cli(runner).exit_code == 0
    with ledger.db.connection_context():
        ada = Account.get(Account.code == "resident:ada")
        ledger.transfer(Account.get(Account.code == "issuer:1"), ada, 100, kind="award", actor="staff:1",
                        idempotency_key="new")
        assert Entry.select().where(Entry.seal.is_null()).count() == 2  # the old ones, vouched for
    assert verify_cli(runner).exit_code == 0
    assert "vouches" not in runner.invoke(args=["init-db"]).output  # once, at the upgrade only
    tamper(f"UPDATE entry SET amount = 30000, balance_after = 30000 WHERE account_id = {ada.id} AND seq = 1")
    caught = verify_cli(runner)
    assert caught.exit_code == 1 and "stored checkpoint 1:" in caught.stderr


def test_a_malformed_stored_checkpoint_vouches_for_nothing_and_breaks_nothing(runner, book):
    tamper("INSERT INTO checkpoint (made_at, body) VALUES ('2026-01-01 00:00:00', '{}')",
           "INSERT INTO checkpoint (made_at, body) VALUES ('2026-01-01 00:00:00', '[1, 2]')",
           "INSERT INTO checkpoint (made_at, body) VALUES ('2026-01-01 00:00:00', 'not json')", drop_triggers=False)
    assert verify_cli(runner).exit_code == 0  # every entry carries its seal: nothing needed vouching
