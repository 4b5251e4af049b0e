"""SMS webhook: signed `POST /sms/inbound` under `gunicorn -w 2 'web:create_app()'`, against a bare
Flask route returning a TwiML string under the same gunicorn settings.

Two mixes. BAL: registered residents ask for their balance (each number sends at most 4 of them,
below the limit of the same text 5 times in 10 minutes, so every request gets a real answer). JOIN: each request is a
different registered resident joining one open activity (a seat taken, a sign-up and an outbox
notice written). Every request has a fresh MessageSid and is signed with twilio's RequestValidator
for PUBLIC_BASE_URL + path, exactly what the app checks. Requests are prepared and signed before
the clock starts; the load generator is a separate process with keep-alive client threads.

Each mix is sent twice, with its own senders: at full speed (each client sends when its last
request is answered: the throughput) and at RATE requests a second (the latency then, each request
timed from when it was due).
"""

import math
import secrets
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

from botapp.sms import SAME_TEXT_LIMIT
from community.models import Signup

from . import world
from .common import Figure, Gunicorn, Memory, child_env
from .loadgen import in_process, requests_load

SECTION = "sms_webhook"
PUBLIC_BASE_URL = "https://linli.example"
PATH = "/sms/inbound"
PER_NUMBER = SAME_TEXT_LIMIT - 1  # BAL requests per number: each gets a real answer
RATE = 200  # requests a second of the paced load
LOADS = {"full speed": None, f"{RATE} requests/s": RATE}


def signed(validator, sender, body):
    """A prepared request: a fresh MessageSid, signed for the URL the app will check."""
    form = {"MessageSid": "SM" + secrets.token_hex(16), "AccountSid": "AC" + "0" * 32, "From": sender,
            "To": "+15005550006", "Body": body, "NumSegments": "1"}
    signature = validator.compute_signature(PUBLIC_BASE_URL + PATH, form)
    return PATH, urlencode(form).encode(), {"Content-Type": "application/x-www-form-urlencoded",
                                            "X-Twilio-Signature": signature}


def prepare(url, count, clients):
    """Residents and an activity; return the token, the signed warm-up, and for each load the
    BAL and JOIN requests."""
    token = secrets.token_hex(16)
    validator = RequestValidator(token)
    warm_count = 4 * clients
    bal_numbers = math.ceil(count / PER_NUMBER)
    with world.opened(url):
        place, boss = world.community()
        activity = world.activity(boss, place, capacity=min(10_000, len(LOADS) * count + warm_count))
        warm = world.residents(place, warm_count, first=0)
        first, loads = warm_count, {}
        for load in LOADS:
            bal = world.residents(place, bal_numbers, first=first)
            join = world.residents(place, count, first=first + bal_numbers)
            first += bal_numbers + count
            loads[load] = {
                "BAL": [signed(validator, bal[i % bal_numbers].phone, "BAL") for i in range(count)],
                "JOIN": [signed(validator, r.phone, f"JOIN {activity.code}") for r in join],
            }
    warmup = [signed(validator, r.phone, "BAL" if i % 2 else f"JOIN {activity.code}") for i, r in enumerate(warm)]
    return token, warmup, loads


def load(server, warmup, requests, ctx, expect, rate):
    """Send one mix to `server` from the load generator process; return its measurements."""
    sizes = ctx.sizes
    return in_process(requests_load, server.port, warmup, requests, sizes.http_clients, sizes.time_limit, expect,
                      rate, timeout=sizes.time_limit + 180)


def run(ctx):
    """Each mix against the app, then against the bare route, on each database."""
    for kind in ctx.kinds:
        url = ctx.databases.fresh(kind, "sms")
        try:
            token, warmup, loads = prepare(url, ctx.sizes.sms_requests, ctx.sizes.http_clients)
            env = child_env(DATABASE_URL=url, TWILIO_AUTH_TOKEN=token, PUBLIC_BASE_URL=PUBLIC_BASE_URL,
                            SECRET_KEY=secrets.token_hex(32))
            measured = {}
            for app in ("web:create_app()", "bench.bare_app:create_app()"):
                linli = app.startswith("web")
                with Gunicorn(app, env=env, log_path=ctx.log(f"sms-{kind}-{'web' if linli else 'bare'}")) as server:
                    server.ready()
                    idle = server.memory()
                    server.reset_peak()
                    for name, rate in LOADS.items():
                        for mix, requests in loads[name].items():
                            first = mix == "BAL" and rate is None
                            measured[app, name, mix] = load(server, warmup if first else [], requests, ctx,
                                                            "<Message>", rate)
                    loaded = server.memory()
                    ctx.results.add_memory(Memory(
                        "web worker" if linli else "web worker (bare Flask)", kind, idle["VmRSS"],
                        loaded["VmRSS"], loaded["VmHWM"], "SMS webhook, BAL then JOIN mix", server.command))
            with world.opened(url):
                joined = Signup.select().where(Signup.state == Signup.SIGNED_UP).count()
            joins = sum(len(mixes["JOIN"]) for mixes in loads.values())
            if joined < joins:
                ctx.results.note(f"{kind}: only {joined} of {joins} JOIN requests signed up")
            command = ctx.command(SECTION, kind)
            for (app, name, mix), measure in measured.items():
                if not app.startswith("web"):
                    continue
                bare = measured["bench.bare_app:create_app()", name, mix]
                silent = measure["requests"] - measure["with_expected"]
                if silent:
                    ctx.results.note(f"{kind} {mix}, {name}: {silent} of {measure['requests']} requests got no "
                                     f"SMS reply (statuses {measure['statuses']})")
                detail = {"app": measure, "bare": bare, "clients": ctx.sizes.http_clients, "rate": LOADS[name]}
                if LOADS[name] is None:
                    ctx.results.add(Figure(SECTION, f"{mix} mix requests/s", kind, measure["requests_per_s"],
                                           bare["requests_per_s"], "req/s", "bare Flask route, same gunicorn",
                                           command, detail=detail))
                for stat in ("p50_ms", "p99_ms"):
                    ctx.results.add(Figure(SECTION, f"{mix} mix latency {stat[:3]}, {name}", kind, measure[stat],
                                           bare[stat], "ms", "bare Flask route, same gunicorn", command,
                                           better="lower", detail=detail if LOADS[name] else {}))
        finally:
            ctx.databases.drop(url)
