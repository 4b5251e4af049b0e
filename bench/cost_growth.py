"""Cost growth: `ledger.balance` and `ledger.history(limit=10)` latency with a small and a big ledger.

Each database is bulk-loaded through the bare driver in one transaction (SQLite: executemany;
PostgreSQL: COPY, then VACUUM ANALYZE as autovacuum would in time): an issuer, a shop and RESIDENTS
residents, and transfers that alternate an award (issuer → a random resident) and a redemption
(that resident → the shop) whenever the resident can pay. Balances, sequence numbers and
balance_after are consistent, but the hashes are placeholders: the chains are NOT valid and
`ledger verify` would fail on these databases. Reads do not look at hashes, so latency is what it
would be with correct chains of the same length.

The calls go through the ledger on the project's handle (SQLite with its pragmas), one connection
kept open, on uniformly random resident accounts (the same ones in every database). The ratio is
big / small: 1.0 means the cost stays flat as the ledger grows. A further figure is the cost of
opening a connection per call, as a web request or a bot handler does (`db.connection_context()`).
"""

import datetime
import random
import sqlite3
import time

import psycopg

import ledger

from .common import Figure, latency_ms
from .databases import sqlite_path

SECTION = "cost_growth"
RESIDENTS = 500
FILLER = "0" * 64
CHUNK = 50_000
BASE_TIME = datetime.datetime(2024, 1, 1)


def _rows(entries):
    """Yield (table, row) pairs for `entries` entries: accounts, then transfers with their entries,
    then ("balance", (balance, version, id)) for each account."""
    rng = random.Random(entries)
    issuer, shop = 1, 2
    residents = list(range(3, RESIDENTS + 3))
    balance = dict.fromkeys([issuer, shop, *residents], 0)
    seq = dict.fromkeys(balance, 0)
    codes = {issuer: "issuer:bench", shop: "shop:bench"}
    kinds = {issuer: "issuer", shop: "shop"}
    for account in balance:
        code = codes.get(account, f"resident:bench:{account}")
        yield "account", (account, code, kinds.get(account, "resident"), code, 0, 0, FILLER, BASE_TIME)
    entry_id = 0
    for transfer_id in range(1, entries // 2 + 1):
        resident = rng.choice(residents)
        if transfer_id % 2 == 0 and balance[resident] >= 50:
            kind, memo, legs = "redeem", "肥皂×1", ((resident, -50), (shop, 50))
        else:
            kind, memo, legs = "award", "volunteering v1: Park clean-up", ((issuer, -100), (resident, 100))
        created = BASE_TIME + datetime.timedelta(seconds=transfer_id)
        yield "transfer", (transfer_id, f"bulk:{transfer_id:010d}", kind, memo, "staff:1", created, FILLER, FILLER)
        for account, amount in legs:
            balance[account] += amount
            seq[account] += 1
            entry_id += 1
            yield "entry", (entry_id, transfer_id, account, seq[account], amount, balance[account], FILLER, FILLER)
    for account in balance:
        yield "balance", (balance[account], seq[account], account)


COLUMNS = {
    "transfer": "id, idempotency_key, kind, memo, actor, created_at, fingerprint, digest",
    "entry": "id, transfer_id, account_id, seq, amount, balance_after, prev_hash, hash",
    "account": "id, code, kind, name, balance, version, head_hash, created_at",
}


def _batches(entries):
    """Rows grouped by table in chunks, in an order that keeps every foreign key satisfied."""
    pending = {"account": [], "transfer": [], "entry": [], "balance": []}
    for table, row in _rows(entries):
        pending[table].append(row)
        if len(pending["entry"]) >= CHUNK:
            for name in ("account", "transfer", "entry"):
                if pending[name]:
                    yield name, pending[name]
                    pending[name] = []
    for name in ("account", "transfer", "entry", "balance"):
        if pending[name]:
            yield name, pending[name]


def bulk_load(url, entries):
    """Fill an empty migrated database with `entries` ledger entries; return the resident ids."""
    if url.startswith("sqlite:"):
        conn = sqlite3.connect(sqlite_path(url), isolation_level=None)
        try:
            conn.execute("BEGIN")
            for table, rows in _batches(entries):
                if table == "balance":
                    conn.executemany("UPDATE account SET balance = ?, version = ? WHERE id = ?", rows)
                    continue
                marks = ", ".join("?" * len(rows[0]))
                stored = [tuple(str(v) if isinstance(v, datetime.datetime) else v for v in r) for r in rows]
                conn.executemany(f"INSERT INTO {table} ({COLUMNS[table]}) VALUES ({marks})", stored)
            conn.execute("COMMIT")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
    else:
        with psycopg.connect(url) as conn:
            with conn.cursor() as cur:
                for table, rows in _batches(entries):
                    if table == "balance":
                        cur.executemany("UPDATE account SET balance = %s, version = %s WHERE id = %s", rows)
                        continue
                    with cur.copy(f"COPY {table} ({COLUMNS[table]}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
                for table in ("account", "transfer", "entry"):
                    cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                f"(SELECT max(id) FROM {table}))")
            conn.commit()
            conn.autocommit = True
            conn.execute("VACUUM ANALYZE")
    return list(range(3, RESIDENTS + 3))


def _timed(function, accounts):
    latencies = []
    for account in accounts:
        t0 = time.perf_counter()
        function(account)
        latencies.append(time.perf_counter() - t0)
    return latency_ms(latencies)


def measure(url, residents, calls):
    """Latency of balance() and history(limit=10) on random residents; and with a connection per call."""
    rng = random.Random(42)
    accounts = [rng.choice(residents) for _ in range(calls)]
    database = ledger.open_database(url)
    try:
        database.connect()
        for account in accounts[:50]:  # warm the caches and the prepared statements
            ledger.balance(account)
            ledger.history(account, limit=10)
        found = {
            "balance": _timed(ledger.balance, accounts),
            "history": _timed(lambda a: ledger.history(a, limit=10), accounts),
        }
        database.close()

        def connected_balance(account):
            with database.connection_context():
                ledger.balance(account)

        found["balance_connect"] = _timed(connected_balance, accounts[: max(50, calls // 2)])
        return found
    finally:
        if not database.is_closed():
            database.close()


def run(ctx):
    """Load each size, measure, and compare every bigger size with the smallest."""
    sizes = ctx.sizes.growth_sizes
    for kind in ctx.kinds:
        measured = {}
        for entries in sizes:
            url = ctx.databases.fresh(kind, f"growth_{entries}")
            try:
                t0 = time.monotonic()
                residents = bulk_load(url, entries)
                loaded = time.monotonic() - t0
                print(f"  {kind}: {entries:,} entries loaded in {loaded:.1f} s", flush=True)
                measured[entries] = {**measure(url, residents, ctx.sizes.growth_calls), "load_seconds": loaded}
            finally:
                ctx.databases.drop(url)
        small = sizes[0]
        for big in sizes[1:]:
            for call, label in (("balance", "balance()"), ("history", "history(limit=10)")):
                for stat in ("p50_ms", "p99_ms"):
                    ctx.results.add(Figure(
                        SECTION, f"{label} {stat[:3]} at {big:,} entries", kind,
                        measured[big][call][stat] * 1000, measured[small][call][stat] * 1000, "µs",
                        f"same at {small:,} entries", ctx.command(SECTION, kind), better="lower",
                        detail={"small": measured[small][call], "big": measured[big][call]},
                    ))
        biggest = sizes[-1]
        ctx.results.add(Figure(
            SECTION, f"balance() p50 opening a connection per call, {biggest:,} entries", kind,
            measured[biggest]["balance_connect"]["p50_ms"] * 1000, measured[biggest]["balance"]["p50_ms"] * 1000,
            "µs", "balance() on an open connection", ctx.command(SECTION, kind), better="lower",
            detail={"connect": measured[biggest]["balance_connect"], "open": measured[biggest]["balance"],
                    "load_seconds": {str(k): v["load_seconds"] for k, v in measured.items()}},
        ))
