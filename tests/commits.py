"""How the transactions of a test were committed, read from peewee's query log (which lists
what is queued for PostgreSQL's next round trip as well)."""

import logging

import pytest


@pytest.fixture
def statements(caplog):
    """Call it for the statements peewee has sent or queued since the test began (or the
    last `caplog.clear()`)."""
    caplog.set_level(logging.DEBUG, logger="peewee")
    return lambda: [r.msg[0] for r in caplog.records if r.name == "peewee" and isinstance(r.msg, tuple)]


def light(statements):
    """Whether a commit among `statements` was told it need not wait for the disk (on
    PostgreSQL: unless the transaction has written anything else, which the server decides)."""
    return any(s == "PRAGMA synchronous = NORMAL" or s.startswith("SELECT set_config('synchronous_commit'")
               for s in statements)
