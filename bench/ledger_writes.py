"""Ledger writes: awards and redemptions per second through `ledger.transfer`, 1, 4 and 16 writer
processes, against the same row writes per transaction through the bare driver.

Each writer is a separate process with its own connection, released at one moment, writing for a
fixed time (or up to a fixed count). An award moves points from the community's issuer account to
a random resident; a redemption moves them from a random resident to the shop, and the debit must
check the balance. As in production, every award touches the one issuer row and every redemption
the one shop row.

The floor does per transfer what the ledger writes: one transfer row, two entry rows and two
conditional balance UPDATEs (RETURNING the new balance and version, with the same overdraft check
on the debit and the same ascending account order), in one transaction begun the way peewee
begins it (SQLite: the project's pragmas and BEGIN IMMEDIATE; PostgreSQL: autocommit connection,
explicit BEGIN/COMMIT, READ COMMITTED), with the same durability, in a database with the same
schema, indexes and append-only triggers. It computes no hashes, reads nothing back beyond the
RETURNING clause and checks no idempotency key; the ledger does all of that.
"""

import datetime
import multiprocessing
import os
import queue as queue_module
import random
import sqlite3
import time
import traceback

import psycopg

import ledger
from ledger.db import SQLITE_PRAGMAS

from .common import Figure, latency_ms
from .databases import sqlite_path

SECTION = "ledger_writes"
CONTEXT = multiprocessing.get_context("fork")  # the parent holds no connection when it forks
OPERATIONS = ("award", "redemption")
WRITERS = (1, 4, 16)
RESIDENTS = 64
AWARD, REDEMPTION = 100, 150  # hundredths of a point
MEMO = {"award": "volunteering v1: Park clean-up", "redemption": "肥皂×1, 食用油×1"}
KIND = {"award": "award", "redemption": "redeem"}
FILLER = "0" * 64


def prepare(url):
    """An issuer, a shop and RESIDENTS residents (funded for redemptions); return their ids."""
    database = ledger.open_database(url)
    try:
        with ledger.db.atomic():
            issuer = ledger.open_account("issuer:bench", ledger.Account.ISSUER, "Bench community")
            shop = ledger.open_account("shop:bench", ledger.Account.SHOP, "Bench supermarket")
            residents = [ledger.open_account(f"resident:bench:{i}", ledger.Account.RESIDENT, f"R{i}")
                         for i in range(RESIDENTS)]
            for resident in residents:
                ledger.transfer(issuer, resident, 10_000_000, kind="award", actor="bench",
                                idempotency_key=f"fund:{resident.id}")
        return {"issuer": issuer.id, "shop": shop.id, "residents": [r.id for r in residents]}
    finally:
        database.close()


def legs(operation, accounts, rng):
    """The (source, destination, amount) of one operation."""
    resident = rng.choice(accounts["residents"])
    if operation == "award":
        return accounts["issuer"], resident, AWARD
    return resident, accounts["shop"], REDEMPTION


class LedgerWriter:
    """Posts through the ledger, on the project's database handle."""

    def __init__(self, url):
        self.database = ledger.open_database(url)
        self.database.connect()

    def write(self, operation, source, destination, amount, key):
        ledger.transfer(source, destination, amount, kind=KIND[operation], memo=MEMO[operation],
                        actor="staff:1", idempotency_key=key)

    def close(self):
        self.database.close()


class FloorWriter:
    """The same rows per transfer through the bare driver (sqlite3 or psycopg)."""

    def __init__(self, url):
        self.sqlite = url.startswith("sqlite:")
        if self.sqlite:
            # As peewee connects: isolation_level=None (it issues BEGIN itself), timeout, the pragmas.
            self.conn = sqlite3.connect(sqlite_path(url), timeout=30, isolation_level=None)
            for name, value in SQLITE_PRAGMAS:
                self.conn.execute(f"PRAGMA {name} = {value}")
            self.begin, self.mark = "BEGIN IMMEDIATE", "?"
        else:
            # As peewee connects: autocommit on, explicit BEGIN, the server's default isolation.
            self.conn = psycopg.connect(url, autocommit=True)
            self.begin, self.mark = "BEGIN", "%s"
        m = self.mark
        self.insert_transfer = (
            "INSERT INTO transfer (idempotency_key, kind, memo, actor, created_at, reverses_id, fingerprint, digest) "
            f"VALUES ({m}, {m}, {m}, {m}, {m}, NULL, {m}, {m}) RETURNING id"
        )
        self.credit = (f"UPDATE account SET balance = balance + {m}, version = version + 1, head_hash = {m} "
                       f"WHERE id = {m} RETURNING balance, version")
        self.debit = (f"UPDATE account SET balance = balance + {m}, version = version + 1, head_hash = {m} "
                      f"WHERE id = {m} AND (kind = 'issuer' OR balance + {m} >= 0) RETURNING balance, version")
        self.insert_entry = ("INSERT INTO entry (transfer_id, account_id, seq, amount, balance_after, prev_hash, hash) "
                             f"VALUES ({m}, {m}, {m}, {m}, {m}, {m}, {m})")

    def write(self, operation, source, destination, amount, key):
        cur = self.conn.cursor()
        cur.execute(self.begin)
        try:
            now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
            now = str(now) if self.sqlite else now  # as peewee stores a DateTimeField on SQLite
            cur.execute(self.insert_transfer, (key, KIND[operation], MEMO[operation], "staff:1", now, FILLER, FILLER))
            transfer_id = cur.fetchone()[0]
            for account_id, delta in sorted([(source, -amount), (destination, amount)]):
                if delta < 0:
                    cur.execute(self.debit, (delta, FILLER, account_id, delta))
                else:
                    cur.execute(self.credit, (delta, FILLER, account_id))
                row = cur.fetchone()
                if row is None:
                    raise RuntimeError(f"account {account_id} would be overdrawn")
                balance, seq = row
                cur.execute(self.insert_entry, (transfer_id, account_id, seq, delta, balance, FILLER, FILLER))
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")

    def close(self):
        self.conn.close()


def _writer(implementation, url, operation, accounts, seed, duration, max_ops, barrier, start_at, out):
    """One writer process: connect, warm up, wait for the others, write until the time is up."""
    writer = None
    try:
        writer = (LedgerWriter if implementation == "ledger" else FloorWriter)(url)
        rng = random.Random(seed)
        pid = os.getpid()
        for i in range(3):
            writer.write(operation, *legs(operation, accounts, rng), f"warm:{implementation}:{pid}:{i}")
        barrier.wait(timeout=120)
        barrier.wait(timeout=120)  # the parent has set the start time in between
        begin = start_at.value
        time.sleep(max(0.0, begin - time.monotonic()))
        end = begin + duration
        latencies, errors, done = [], 0, 0
        while done < max_ops:
            t0 = time.monotonic()
            if t0 >= end:
                break
            try:
                writer.write(operation, *legs(operation, accounts, rng), f"bench:{implementation}:{pid}:{done}")
            except Exception:  # counted, and the first one shown: a refusal must not pass unnoticed
                errors += 1
                if errors == 1:
                    traceback.print_exc()
            done += 1
            latencies.append(time.monotonic() - t0)
        out.put({"ok": True, "done": done, "errors": errors, "latencies": latencies,
                 "finished": time.monotonic(), "begin": begin})
    except BaseException:
        out.put({"ok": False, "error": traceback.format_exc()})
    finally:
        if writer is not None:
            writer.close()


def run_writers(implementation, url, operation, accounts, writers, duration, max_ops):
    """Run `writers` processes at once; return ops/s and per-operation latency."""
    barrier = CONTEXT.Barrier(writers + 1)
    start_at = CONTEXT.Value("d", 0.0)
    out = CONTEXT.Queue()
    processes = [
        CONTEXT.Process(target=_writer, args=(implementation, url, operation, accounts, 1000 + i, duration,
                                              max_ops, barrier, start_at, out), daemon=True)
        for i in range(writers)
    ]
    reports = []
    try:
        for process in processes:
            process.start()
        barrier.wait(timeout=120)
        start_at.value = time.monotonic() + 0.1
        barrier.wait(timeout=120)
        deadline = time.monotonic() + duration + 120
        while len(reports) < writers:
            try:
                reports.append(out.get(timeout=max(0.1, deadline - time.monotonic())))
            except queue_module.Empty:
                raise RuntimeError(f"only {len(reports)} of {writers} writers reported") from None
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join(timeout=10)
    failed = [r["error"] for r in reports if not r["ok"]]
    if failed:
        raise RuntimeError("a writer failed:\n" + failed[0])
    done = sum(r["done"] for r in reports)
    errors = sum(r["errors"] for r in reports)
    elapsed = max(r["finished"] for r in reports) - reports[0]["begin"]
    latencies = [x for r in reports for x in r["latencies"]]
    return {"ops_per_s": (done - errors) / elapsed, "ops": done, "errors": errors, "seconds": elapsed,
            **latency_ms(latencies)}


def run(ctx):
    """Every database × operation × writer count, the ledger and its floor one after the other."""
    duration, max_ops = ctx.sizes.write_seconds, ctx.sizes.write_max_ops
    for kind in ctx.kinds:
        for operation in OPERATIONS:
            for writers in WRITERS:
                measured = {}
                for implementation in ("ledger", "floor"):
                    url = ctx.databases.fresh(kind, f"writes_{implementation}")
                    try:
                        accounts = prepare(url)
                        measured[implementation] = run_writers(implementation, url, operation, accounts, writers,
                                                               duration, max_ops)
                    finally:
                        ctx.databases.drop(url)
                    if measured[implementation]["errors"]:
                        ctx.results.note(f"{kind} {operation} ×{writers} {implementation}: "
                                         f"{measured[implementation]['errors']} failed operations")
                ctx.results.add(Figure(
                    SECTION, f"{operation}s/s, {writers} writer{'s' if writers > 1 else ''}", kind,
                    measured["ledger"]["ops_per_s"], measured["floor"]["ops_per_s"], "ops/s",
                    "same row writes, bare driver",
                    ctx.command(SECTION, kind), detail=measured,
                ))
