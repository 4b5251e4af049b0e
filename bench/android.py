"""SMS through the office phone: signed `POST /sms/android` webhooks under `gunicorn -w 2
'web:create_app()'`, their replies queued and handed to a fake phone on loopback by the worker
(`python -m botapp.worker`, the real `android-sms-gateway` client), against a bare Flask route
answering 204 under the same gunicorn settings.

Registered residents ask for their balance (at most 4 messages a number, under the limit of the
same text 5 times in 10 minutes). Each webhook is an `sms:received` event with a fresh event id, signed the way the app
signs (HMAC-SHA256 over the body and X-Timestamp), prepared before the clock starts. Two figures:
the webhook's own requests/s, and replies handed to the phone per second from the first to the
last of them — the whole path, inbound to outbound.
"""

import base64
import hashlib
import hmac
import json
import math
import secrets
import time

from botapp.sms import SAME_TEXT_LIMIT

from . import world
from .common import PYTHON, Child, FakeProvider, Figure, Gunicorn, child_env
from .loadgen import in_process, requests_load

SECTION = "android"
PATH = "/sms/android"
PER_NUMBER = SAME_TEXT_LIMIT - 1
USERNAME, PASSWORD = "sms", secrets.token_urlsafe(12)


class FakePhone(FakeProvider):
    """Answers POST /messages as SMS Gateway for Android's local server does (Basic auth)."""

    expected = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()

    def answer(self, path, headers, raw):
        if headers.get("Authorization") != self.expected or path.split("?")[0] != "/messages":
            return 401, {"message": "Unauthorized"}, False
        numbers = json.loads(raw or b"{}").get("phoneNumbers", [])
        return 202, {"id": f"msg-{len(self.times) + 1}", "state": "Pending", "isHashed": False, "isEncrypted": False,
                     "recipients": [{"phoneNumber": n, "state": "Pending"} for n in numbers]}, True


def signed(key, sender, text):
    """A prepared sms:received webhook, as the app posts it."""
    event = {"deviceId": "office-phone", "event": "sms:received", "id": secrets.token_hex(10), "webhookId": "hook-1",
             "payload": {"messageId": secrets.token_hex(8), "message": text, "phoneNumber": sender, "sender": sender,
                         "simNumber": 1, "receivedAt": "2026-12-01T10:00:00.000+08:00"}}
    body = json.dumps(event, ensure_ascii=False).encode()
    timestamp = str(int(time.time()))
    signature = hmac.new(key.encode(), body + timestamp.encode(), hashlib.sha256).hexdigest()
    return PATH, body, {"Content-Type": "application/json", "X-Signature": signature, "X-Timestamp": timestamp}


def run(ctx):
    """The webhook and the whole path on each database, then the bare route."""
    count, clients = ctx.sizes.sms_requests, ctx.sizes.http_clients
    key = secrets.token_hex(16)
    for kind in ctx.kinds:
        url = ctx.databases.fresh(kind, "android")
        phone = FakePhone()
        try:
            with world.opened(url):
                place, _boss = world.community()
                warm = world.residents(place, clients, first=0)
                numbers = world.residents(place, math.ceil(count / PER_NUMBER), first=clients)
            warmup = [signed(key, r.phone, "余额") for r in warm]
            requests = [signed(key, numbers[i % len(numbers)].phone, "余额") for i in range(count)]
            env = child_env(DATABASE_URL=url, SECRET_KEY=secrets.token_hex(32), SMS_PROVIDER="android",
                            ANDROID_SMS_URL=phone.base, ANDROID_SMS_USERNAME=USERNAME, ANDROID_SMS_PASSWORD=PASSWORD,
                            ANDROID_SMS_SIGNING_KEY=key, SMS_RATE="0")
            worker_argv = [PYTHON, "-m", "botapp.worker"]
            with Gunicorn("web:create_app()", env=env, log_path=ctx.log(f"android-{kind}-web")) as server, \
                    Child(worker_argv, env=env, log_path=ctx.log(f"android-{kind}-worker")) as worker:
                server.ready()
                in_process(requests_load, server.port, [], warmup, clients, ctx.sizes.time_limit, "",
                           timeout=ctx.sizes.time_limit + 180)
                phone.wait(len(warmup), 120, worker)
                app = in_process(requests_load, server.port, [], requests, clients, ctx.sizes.time_limit, "",
                                 timeout=ctx.sizes.time_limit + 180)
                phone.wait(len(warmup) + app["ok"], ctx.sizes.time_limit + 120, worker)
            replies = phone.times[len(warmup):]
            seconds = replies[-1] - replies[0] if len(replies) > 1 else 0
            path = {"replies": len(replies), "seconds": seconds,
                    "replies_per_s": (len(replies) - 1) / seconds if seconds > 0 else None}
            with Gunicorn("bench.bare_app:create_app()", env=env, log_path=ctx.log(f"android-{kind}-bare")) as floor:
                floor.ready()
                bare = in_process(requests_load, floor.port, [], requests, clients, ctx.sizes.time_limit, "",
                                  timeout=ctx.sizes.time_limit + 180)
        finally:
            phone.stop()
            ctx.databases.drop(url)
        if app["ok"] < app["requests"]:
            ctx.results.note(f"{kind} android: {app['requests'] - app['ok']} of {app['requests']} webhooks refused "
                             f"(statuses {app['statuses']})")
        command = ctx.command(SECTION, kind)
        floor = "bare Flask route, same gunicorn"
        ctx.results.add(Figure(SECTION, "webhook requests/s", kind, app["requests_per_s"], bare["requests_per_s"],
                               "req/s", floor, command, detail={"app": app, "bare": bare, "clients": clients}))
        ctx.results.add(Figure(SECTION, "inbound → reply at the phone /s", kind, path["replies_per_s"],
                               bare["requests_per_s"], "/s", floor, command, detail=path))
        for stat in ("p50_ms", "p99_ms"):
            ctx.results.add(Figure(SECTION, f"webhook latency {stat[:3]}", kind, app[stat], bare[stat], "ms", floor,
                                   command, better="lower"))
