"""Balances and passbook history."""

from dataclasses import dataclass

from .db import prepared
from .errors import UnknownAccount
from .models import Account, Entry, Transfer


@dataclass(frozen=True)
class HistoryLine:
    """One passbook line: what the posting was and the balance after it."""

    cursor: int
    transfer_id: int
    kind: str
    memo: str
    amount: int
    balance_after: int
    created_at: object


def _account_id(account):
    return account.id if isinstance(account, Account) else account


_balance = prepared(lambda account: Account.select(Account.balance).where(Account.id == account).tuples())


def balance(account):
    """Return an account's balance in hundredths (one row read, however long the history)."""
    found = _balance(_account_id(account))
    value = found[0][0] if found else None
    if value is None:
        raise UnknownAccount()
    return value


def history(account, limit=10, before=None):
    """Return up to `limit` passbook lines, newest first, older than the `before` cursor."""
    query = (
        Entry.select(
            Entry.seq, Entry.transfer, Transfer.kind, Transfer.memo, Entry.amount,
            Entry.balance_after, Transfer.created_at,
        )
        .join(Transfer)
        .where(Entry.account == _account_id(account))
        .order_by(Entry.seq.desc())
        .limit(max(1, min(int(limit), 500)))
    )
    if before is not None:
        query = query.where(Entry.seq < int(before))
    return [HistoryLine(*row) for row in query.tuples()]
