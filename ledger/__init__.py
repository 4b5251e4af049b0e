"""Linli's points ledger: the one place where points are created, moved and counted.

Amounts are integers in hundredths of a point. A transfer is two or more entries that sum to
zero, posted atomically and at most once per idempotency key. Resident and shop accounts never
go below zero; only a community's issuer account may. Entries and transfers are append-only: a
correction is a reversing transfer. Each entry is hash-chained to its account's previous entry,
so `verify()` can recompute everything from the entries and name what was tampered with.

This package may not import anything else from the project, nor flask, telegram or twilio. It
does not read the environment: callers hand it a database URL through `open_database`. It owns
its transactions; callers pass plain values and get plain values or models back.
"""

from .amounts import MAX_AMOUNT, check_amount, format_amount, parse_amount
from .db import db, is_postgresql, is_sqlite, migrate, open_database
from .errors import (
    AlreadyReversed,
    AmountNotANumber,
    AmountNotPositive,
    AmountOutOfRange,
    AppendOnly,
    IdempotencyConflict,
    InsufficientPoints,
    InvalidAmount,
    InvalidMemo,
    InvalidTransfer,
    LedgerError,
    NotReversible,
    TooManyDecimals,
    UnknownAccount,
)
from .models import Account, Entry, Transfer
from .postings import open_account, post_transfer, reverse, transfer
from .reads import HistoryLine, balance, history
from .verify import Report, verify

__all__ = [
    "MAX_AMOUNT", "Account", "AlreadyReversed", "AmountNotANumber", "AmountNotPositive",
    "AmountOutOfRange", "AppendOnly", "Entry", "HistoryLine", "IdempotencyConflict",
    "InsufficientPoints", "InvalidAmount", "InvalidMemo", "InvalidTransfer", "LedgerError",
    "NotReversible", "Report", "TooManyDecimals", "Transfer", "UnknownAccount", "balance",
    "check_amount", "db", "format_amount", "history", "is_postgresql", "is_sqlite", "migrate",
    "open_account", "open_database", "parse_amount", "post_transfer", "reverse", "transfer",
    "verify",
]
