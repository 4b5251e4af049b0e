"""SMS webhook: signed `POST /sms/inbound` under `gunicorn -w 2 'web:create_app()'`, against a bare
Flask route returning a TwiML string under the same gunicorn settings.

Two mixes. BAL: registered residents ask for their balance (each number sends at most 4 of them,
below the limit of the same text 5 times in 10 minutes, so every request gets a real answer). JOIN: each request is a
different registered resident joining one open activity (a seat taken, a sign-up and an outbox
notice written). Every request has a fresh MessageSid and is signed with twilio's RequestValidator
for PUBLIC_BASE_URL + path, exactly what the app checks. Requests are prepared and signed before
the clock starts; the load generator is a separate process with keep-alive client threads.
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


def signed(validator, sender, body):
    """A prepared request: a fresh MessageSid, signed for the URL the app will check."""
    form = {"MessageSid": "SM" + secrets.token_hex(16), "AccountSid": "AC" + "0" * 32, "From": sender,
            "To": "+15005550006", "Body": body, "NumSegments": "1"}
    signature = validator.compute_signature(PUBLIC_BASE_URL + PATH, form)
    return PATH, urlencode(form).encode(), {"Content-Type": "application/x-www-form-urlencoded",
                                            "X-Twilio-Signature": signature}


def prepare(url, count, clients):
    """Residents and an activity; return the signed warm-up, BAL and JOIN requests."""
    token = secrets.token_hex(16)
    validator = RequestValidator(token)
    warm_count = 4 * clients
    bal_numbers = math.ceil(count / PER_NUMBER)
    with world.opened(url):
        place, boss = world.community()
        activity = world.activity(boss, place, capacity=min(10_000, count + warm_count))
        warm = world.residents(place, warm_count, first=0)
        bal = world.residents(place, bal_numbers, first=warm_count)
        join = world.residents(place, count, first=warm_count + bal_numbers)
    warmup = [signed(validator, r.phone, "BAL" if i % 2 else f"JOIN {activity.code}") for i, r in enumerate(warm)]
    mixes = {
        "BAL": [signed(validator, bal[i % bal_numbers].phone, "BAL") for i in range(count)],
        "JOIN": [signed(validator, r.phone, f"JOIN {activity.code}") for r in join],
    }
    return token, warmup, mixes


def load(server, warmup, requests, ctx, expect):
    """Send one mix to `server` from the load generator process; return its measurements."""
    sizes = ctx.sizes
    return in_process(requests_load, server.port, warmup, requests, sizes.http_clients, sizes.time_limit, expect,
                      timeout=sizes.time_limit + 180)


def run(ctx):
    """Each mix against the app, then against the bare route, on each database."""
    for kind in ctx.kinds:
        url = ctx.databases.fresh(kind, "sms")
        try:
            token, warmup, mixes = prepare(url, ctx.sizes.sms_requests, ctx.sizes.http_clients)
            env = child_env(DATABASE_URL=url, TWILIO_AUTH_TOKEN=token, PUBLIC_BASE_URL=PUBLIC_BASE_URL,
                            SECRET_KEY=secrets.token_hex(32))
            measured = {}
            for app in ("web:create_app()", "bench.bare_app:create_app()"):
                linli = app.startswith("web")
                with Gunicorn(app, env=env, log_path=ctx.log(f"sms-{kind}-{'web' if linli else 'bare'}")) as server:
                    server.ready()
                    idle = server.memory()
                    server.reset_peak()
                    for mix, requests in mixes.items():
                        measured[(app, mix)] = load(server, warmup if mix == "BAL" else [], requests, ctx,
                                                    "<Message>")
                    loaded = server.memory()
                    ctx.results.add_memory(Memory(
                        "web worker" if linli else "web worker (bare Flask)", kind, idle["VmRSS"],
                        loaded["VmRSS"], loaded["VmHWM"], "SMS webhook, BAL then JOIN mix", server.command))
            with world.opened(url):
                joined = Signup.select().where(Signup.state == Signup.SIGNED_UP).count()
            if joined < len(mixes["JOIN"]):
                ctx.results.note(f"{kind}: only {joined} of {len(mixes['JOIN'])} JOIN requests signed up")
            for mix in mixes:
                app, bare = measured[("web:create_app()", mix)], measured[("bench.bare_app:create_app()", mix)]
                if app["with_expected"] < app["requests"]:
                    ctx.results.note(f"{kind} {mix}: {app['requests'] - app['with_expected']} of {app['requests']} "
                                     f"requests got no SMS reply (statuses {app['statuses']})")
                detail = {"app": app, "bare": bare, "clients": ctx.sizes.http_clients}
                command = ctx.command(SECTION, kind)
                ctx.results.add(Figure(SECTION, f"{mix} mix requests/s", kind, app["requests_per_s"],
                                       bare["requests_per_s"], "req/s", "bare Flask route, same gunicorn",
                                       command, detail=detail))
                for stat in ("p50_ms", "p99_ms"):
                    ctx.results.add(Figure(SECTION, f"{mix} mix latency {stat[:3]}", kind, app[stat], bare[stat],
                                           "ms", "bare Flask route, same gunicorn", command, better="lower"))
        finally:
            ctx.databases.drop(url)
