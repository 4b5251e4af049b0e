"""The suite's race harness: run calls in separate processes, released at the same moment.

Children come from tests/processes.py (forks of a clean, preloaded server, never of the test's own
process) and open the database themselves, so nothing is shared but the database. The functions
they run must live at the top level of an importable module (a test module will do).
"""

import queue as queue_module
import traceback

import pytest
from processes import CONTEXT

import ledger
from community import CommunityError


def _run(url, barrier, results, index, function, args):
    """Connect, wait for every sibling, make one call; report (index, outcome)."""
    try:
        database = ledger.open_database(url)
        database.connect()
        try:
            barrier.wait(timeout=60)
            try:
                result = function(*args)
                outcome = f"ok:{getattr(result, 'id', result)}"
            except (ledger.LedgerError, CommunityError) as exc:
                outcome = type(exc).__name__
        finally:
            database.close()
    except BaseException:
        outcome = "error:" + traceback.format_exc()
    results.put((index, outcome))


def race(url, calls, timeout=120):
    """Run each (function, args) in its own process, all released together.

    Returns the outcomes in call order: "ok:<id of the result>" (or of the result itself), or the
    name of the named domain error the call raised. Any other error fails the test.
    """
    barrier, results = CONTEXT.Barrier(len(calls)), CONTEXT.Queue()
    processes = [
        CONTEXT.Process(target=_run, args=(url, barrier, results, index, function, args))
        for index, (function, args) in enumerate(calls)
    ]
    for process in processes:
        process.start()
    outcomes = gather(processes, results, timeout)
    errors = [o for o in outcomes if o.startswith("error:")]
    assert not errors, errors[0]
    return outcomes


def gather(processes, results, timeout=120):
    """Wait for one (index, outcome) from each started process on `results` (a CONTEXT.Queue),
    then reap them all; return the outcomes in index order. A child that never answers fails
    the test. Callers keep the barrier referenced until this returns."""
    outcomes = {}
    try:
        for _ in processes:
            index, outcome = results.get(timeout=timeout)
            outcomes[index] = outcome
    except queue_module.Empty:
        pytest.fail(f"only {len(outcomes)} of {len(processes)} processes answered: {outcomes}")
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
        results.close()
        results.join_thread()
    return [outcomes[i] for i in range(len(processes))]
