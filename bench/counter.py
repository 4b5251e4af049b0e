"""Counter: scan-to-receipt latency with 20 counters at once, against gunicorn on loopback.

Each counter is a clerk logged in through /login beforehand (its own session cookie; the CSRF
token comes from its /counter/ page) that,
for each of its residents, posts /counter/scan with a fresh QR code (pre-issued through
catalog.codes.issue_qr_code with the app's SECRET_KEY), posts /counter/checkout for one item, and
follows the redirect to the receipt. The latency is that whole round, as a clerk waits for it.
The floor is the same three requests against bare Flask routes under the same gunicorn.

Two loads. At full speed every counter starts its next checkout the moment the last is done:
the throughput, and a latency that is mostly the wait for one of the two workers (20 / throughput).
At a clerk's pace every counter starts one checkout every PACE seconds, a clerk ten times
faster than a real one (scanning, fetching the goods, handing them over): the latency a clerk
sees at the busiest hour, measured from when each checkout was due.
"""

import secrets

from catalog.codes import issue_qr_code
from catalog.models import Redemption
from community import people
from community.models import Staff

from . import world
from .common import Figure, Gunicorn, Memory, child_env
from .loadgen import counter_load, in_process, log_in

SECTION = "counter"
COUNTERS = 20
PRICE = 10  # hundredths of a point
PACE = 1.0  # seconds between one counter's checkouts at a clerk's pace
LOADS = {"full speed": 0.0, "a clerk's pace": PACE}


def prepare(url, rounds, secret):
    """Clerks, goods and funded residents with one live QR code each; return the logins and, for
    each load, each counter's codes."""
    with world.opened(url, secret):
        place, boss = world.community()
        world.goods(boss, place, PRICE, stock=len(LOADS) * COUNTERS * rounds + 100)
        logins = []
        for i in range(COUNTERS):
            password = world.password()
            people.create_staff(f"clerk{i:02d}", password, Staff.CLERK, community=place)
            logins.append((f"clerk{i:02d}", password))
        members = world.residents(place, len(LOADS) * COUNTERS * rounds)
        world.fund(place, members, 10 * PRICE)
        codes = [issue_qr_code(resident, secret) for resident in members]
    mine = {load: codes[n::len(LOADS)] for n, load in enumerate(LOADS)}
    return logins, {load: [mine[load][i::COUNTERS] for i in range(COUNTERS)] for load in LOADS}


def run(ctx):
    """The counters against the app, then against the bare routes, on each database."""
    rounds, limit = ctx.sizes.counter_rounds, ctx.sizes.time_limit
    for kind in ctx.kinds:
        url = ctx.databases.fresh(kind, "counter")
        try:
            secret = secrets.token_hex(32)
            logins, codes = prepare(url, rounds, secret)
            env = child_env(DATABASE_URL=url, SECRET_KEY=secret, PUBLIC_BASE_URL="http://127.0.0.1")
            measured = {}
            for app in ("web:create_app()", "bench.bare_app:create_app()"):
                linli = app.startswith("web")
                name = "web" if linli else "bare"
                role = "web worker" if linli else "web worker (bare Flask)"
                with Gunicorn(app, env=env, log_path=ctx.log(f"counter-{kind}-{name}")) as server:
                    server.ready()
                    idle = server.memory()
                    sessions = [{}] * COUNTERS
                    if linli:
                        server.reset_peak()
                        sessions = [log_in(server.port, *credentials) for credentials in logins]
                        logged_in = server.memory()
                        ctx.results.add_memory(Memory(role, kind, idle["VmRSS"], logged_in["VmRSS"],
                                                      logged_in["VmHWM"], f"{COUNTERS} clerk logins (Argon2id)",
                                                      server.command))
                    server.reset_peak()
                    for load, pace in LOADS.items():
                        measured[name, load] = in_process(counter_load, server.port, sessions, codes[load], limit,
                                                          pace, timeout=limit + 300)
                    loaded = server.memory()
                    ctx.results.add_memory(Memory(role, kind, idle["VmRSS"], loaded["VmRSS"], loaded["VmHWM"],
                                                  f"{COUNTERS} counters checking out", server.command))
            with world.opened(url):
                done = Redemption.select().count()
        finally:
            ctx.databases.drop(url)
        for load in LOADS:
            app, bare = measured["web", load], measured["bare", load]
            if app["failed"]:
                ctx.results.note(f"{kind}, {load}: {app['failed']} checkouts failed ({app['failures']})")
            command = ctx.command(SECTION, kind)
            detail = {"app": app, "bare": bare, "counters": COUNTERS, "pace_s": LOADS[load]}
            for stat in ("p50_ms", "p99_ms"):
                ctx.results.add(Figure(SECTION, f"scan→receipt {stat[:3]}, {COUNTERS} counters at {load}", kind,
                                       app[stat], bare[stat], "ms", "same 3 requests, bare Flask routes", command,
                                       better="lower", detail=detail if stat == "p50_ms" else {}))
            if not LOADS[load]:
                ctx.results.add(Figure(SECTION, f"checkouts/s, {COUNTERS} counters at {load}", kind,
                                       app["checkouts_per_s"], bare["checkouts_per_s"], "/s",
                                       "same 3 requests, bare Flask routes", command))
        checkouts = sum(measured["web", load]["checkouts"] for load in LOADS)
        if done != checkouts:
            ctx.results.note(f"{kind}: {done} redemptions recorded for {checkouts} receipts")
