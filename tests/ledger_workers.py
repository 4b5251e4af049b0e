"""Child-process side of test_ledger_races.py.

Children are spawned (clean interpreters), so everything they run lives at the top level of this
importable module; they find it because multiprocessing hands the parent's sys.path (which pytest
extended with this tests directory) to each child.
"""

import traceback

import ledger


def _spend(resident_id, shop_id, amount, key):
    return ledger.transfer(
        resident_id, shop_id, amount, kind="redeem", actor="counter:1", idempotency_key=key
    )


def _reverse(transfer_id, reason, key=None):
    return ledger.reverse(transfer_id, reason, "staff:1", idempotency_key=key)


OPERATIONS = {"spend": _spend, "reverse": _reverse}


def run(url, barrier, queue, index, operation, args):
    """Connect, wait for every sibling, run one ledger call; report (index, outcome) on `queue`.

    The outcome is "ok:<transfer id>", the name of a LedgerError, or "error:..." for anything else.
    """
    try:
        database = ledger.open_database(url)
        database.connect()
        try:
            barrier.wait(timeout=60)
            try:
                outcome = f"ok:{OPERATIONS[operation](*args).id}"
            except ledger.LedgerError as exc:
                outcome = type(exc).__name__
        finally:
            database.close()
    except BaseException:
        outcome = "error:" + traceback.format_exc()
    queue.put((index, outcome))
