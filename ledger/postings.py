"""Posting transfers: atomic, idempotent, never overdrawing, hash-chained."""

import hashlib
import json

from peewee import IntegrityError, SqliteDatabase

from .amounts import check_amount
from .db import db
from .errors import (
    AlreadyReversed,
    IdempotencyConflict,
    InsufficientPoints,
    InvalidMemo,
    InvalidTransfer,
    LedgerError,
    NotReversible,
    UnknownAccount,
)
from .keys import seal
from .models import Account, Transfer, utcnow

MAX_MEMO = 500
MAX_KEY = 200
MAX_ACTOR = 100


def _sha256(*parts):
    payload = json.dumps(parts, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def fingerprint(kind, legs, memo, actor, reverses_id):
    """Hash what a request asks for, so a replay can be told from a different request."""
    return _sha256(kind, sorted(legs), memo, actor, reverses_id)


def transfer_digest(transfer):
    """Hash a stored transfer's content; every entry's hash covers it."""
    return _sha256(
        transfer.idempotency_key,
        transfer.kind,
        transfer.memo,
        transfer.actor,
        transfer.reverses_id,
        transfer.created_at.isoformat(),
        transfer.fingerprint,
    )


def entry_hash(prev_hash, transfer_id, digest, account_id, seq, amount, balance_after):
    """Hash one entry onto its account's chain."""
    return _sha256(prev_hash, transfer_id, digest, account_id, seq, amount, balance_after)


def open_account(code, kind, name=""):
    """Return the account with `code`, creating it (race-safe) if it does not exist."""
    if kind not in Account.KINDS:
        raise LedgerError(f"unknown account kind {kind!r}")
    account = Account.get_or_none(Account.code == code)
    if account is None:
        try:
            with db.atomic():
                return Account.create(code=code, kind=kind, name=name)
        except IntegrityError:  # created by someone else a moment ago
            account = Account.get(Account.code == code)
    if account.kind != kind:
        raise LedgerError(f"account {code!r} exists with kind {account.kind!r}")
    return account


def _check_text(value, limit, what):
    if not isinstance(value, str) or len(value) > limit or "\x00" in value or not _encodable(value):
        raise InvalidMemo(f"{what} must be text of at most {limit} characters without NUL")
    return value


def _encodable(value):
    try:
        value.encode("utf-8")  # a lone surrogate (from a mangled JSON escape) cannot be stored
    except UnicodeEncodeError:
        return False
    return True


def _normalise_legs(legs):
    merged = {}
    for account, amount in legs:
        account_id = account.id if isinstance(account, Account) else account
        if isinstance(account_id, bool) or not isinstance(account_id, int):
            raise InvalidTransfer()
        check_amount(amount, allow_negative=True)
        merged[account_id] = merged.get(account_id, 0) + amount
    merged = [(a, check_amount(amt, allow_negative=True)) for a, amt in merged.items() if amt != 0]
    if len(merged) < 2 or sum(amt for _, amt in merged) != 0:
        raise InvalidTransfer()
    return sorted(merged)


def post_transfer(kind, legs, *, memo="", actor, idempotency_key, reverses=None):
    """Post a transfer of (account, amount) legs once per idempotency key; return it.

    Replaying the same key with the same content returns the original transfer and writes
    nothing; the same key with different content raises IdempotencyConflict.
    """
    if kind not in Transfer.KINDS:
        raise InvalidTransfer(f"unknown transfer kind {kind!r}")
    _check_text(memo, MAX_MEMO, "memo")
    _check_text(actor, MAX_ACTOR, "actor")
    if not idempotency_key:
        raise InvalidMemo("an idempotency key is required")
    _check_text(idempotency_key, MAX_KEY, "idempotency key")
    legs = _normalise_legs(legs)
    reverses_id = reverses.id if isinstance(reverses, Transfer) else reverses
    wanted = fingerprint(kind, legs, memo, actor, reverses_id)

    try:
        with db.atomic():
            return _write(kind, legs, memo, actor, idempotency_key, reverses_id, wanted)
    except IntegrityError:
        # A concurrent writer committed the same reversal first (or the same key, on a database
        # that reports it as an error).
        existing = Transfer.get_or_none(Transfer.idempotency_key == idempotency_key)
        if existing is not None:
            return _replayed(existing, wanted)
        if reverses_id is not None and Transfer.select().where(Transfer.reverses == reverses_id).exists():
            raise AlreadyReversed() from None
        raise InvalidTransfer() from None


def _replayed(existing, wanted):
    if existing.fingerprint != wanted:
        raise IdempotencyConflict(transfer_id=existing.id)
    return existing


# The write path is four statements, written out once per database and number of legs rather
# than built by the ORM on every transfer: insert the transfer unless its key exists, read and
# lock the accounts (in ascending order, so concurrent transfers lock in one order), set their
# balance, version and head hash, and insert the entries.
_STATEMENTS = {}


def _statements(legs):
    """The SQL of a transfer with `legs` legs on the bound database."""
    engine = "sqlite" if isinstance(db.obj, SqliteDatabase) else "postgresql"
    found = _STATEMENTS.get((engine, legs))
    if found is None:
        p = db.obj.param
        ids, row = ", ".join([p] * legs), "(" + ", ".join([p] * 8) + ")"
        case = " ".join([f"WHEN {p} THEN {p}"] * legs)
        found = _STATEMENTS[engine, legs] = (
            "INSERT INTO transfer (idempotency_key, kind, memo, actor, created_at, reverses_id, fingerprint, "
            f"digest) VALUES {row} ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
            f"SELECT id, kind, balance, version, head_hash FROM account WHERE id IN ({ids}) ORDER BY id"
            + (" FOR UPDATE" if engine == "postgresql" else ""),
            f"UPDATE account SET balance = CASE id {case} END, version = CASE id {case} END, "
            f"head_hash = CASE id {case} END WHERE id IN ({ids})",
            "INSERT INTO entry (transfer_id, account_id, seq, amount, balance_after, prev_hash, hash, seal) "
            f"VALUES {', '.join([row] * legs)}",
        )
    return found


def _write(kind, legs, memo, actor, key, reverses_id, wanted):
    insert_transfer, lock_accounts, update_accounts, insert_entries = _statements(len(legs))
    transfer = Transfer(idempotency_key=key, kind=kind, memo=memo, actor=actor, created_at=utcnow(),
                        reverses=reverses_id, fingerprint=wanted)
    transfer.digest = transfer_digest(transfer)
    row = db.execute_sql(insert_transfer, (
        key, kind, memo, actor, Transfer.created_at.db_value(transfer.created_at), reverses_id, wanted,
        transfer.digest)).fetchone()
    if row is None:  # the key was used before: the same request again, or a conflicting one
        return _replayed(Transfer.get(Transfer.idempotency_key == key), wanted)
    transfer.id = row[0]
    accounts = {r[0]: r[1:] for r in db.execute_sql(lock_accounts, [a for a, _ in legs]).fetchall()}
    balances, versions, heads, entries = [], [], [], []
    for account_id, amount in legs:
        if account_id not in accounts:
            raise UnknownAccount(account_id=account_id)
        account_kind, balance, version, prev_hash = accounts[account_id]
        if amount < 0 and account_kind != Account.ISSUER and balance + amount < 0:
            raise InsufficientPoints(account_id=account_id, balance=balance, needed=-amount)
        balance, seq = balance + amount, version + 1
        new_hash = entry_hash(prev_hash, transfer.id, transfer.digest, account_id, seq, amount, balance)
        balances += (account_id, balance)
        versions += (account_id, seq)
        heads += (account_id, new_hash)
        entries += (transfer.id, account_id, seq, amount, balance, prev_hash, new_hash, seal(new_hash))
    db.execute_sql(update_accounts, [*balances, *versions, *heads, *(a for a, _ in legs)])
    db.execute_sql(insert_entries, entries)
    return transfer


def transfer(source, destination, amount, *, kind, memo="", actor, idempotency_key):
    """Move a positive `amount` from `source` to `destination`; see post_transfer."""
    check_amount(amount)
    return post_transfer(
        kind,
        [(source, -amount), (destination, amount)],
        memo=memo,
        actor=actor,
        idempotency_key=idempotency_key,
    )


def reverse(original, reason, actor, *, idempotency_key=None):
    """Post the opposite of `original` (at most once); refuse where it would overdraw."""
    if not isinstance(original, Transfer):
        original = Transfer.by_id(original)
        if original is None:
            raise InvalidTransfer("no such transfer")
    if original.kind == Transfer.REVERSAL:
        raise NotReversible()
    legs = [(e.account_id, -e.amount) for e in original.entries]
    key = idempotency_key or f"reversal:{original.id}"
    try:
        return post_transfer(
            Transfer.REVERSAL, legs, memo=reason, actor=actor, idempotency_key=key, reverses=original.id
        )
    except IdempotencyConflict:
        if Transfer.select().where(Transfer.reverses == original.id).exists():
            raise AlreadyReversed() from None
        raise
