"""Outbox: SMS notices per second drained by the worker, against the configured SMS_RATE.

The worker runs as its own process (bench/worker_proc.py: botapp.worker's own worker with twilio's
Client pointed at a local fake Messages API in this process). Residents join an activity through
community.activities.join, which queues one "signed up" notice each in the same transaction; the
figure is (notices - 1) / (time from the first to the last send) as the fake API saw them. It
should reach SMS_RATE and never exceed it. A second worker with SMS_RATE=0 (no pacing) shows how
far above the configured rate the worker could go.
"""

import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import ledger
from community import activities
from community.models import Notice

from . import world
from .common import LOOPBACK, PYTHON, Child, Figure, Memory, child_env, memory_kb, reset_peak

SECTION = "outbox"
SMS_RATE = 20.0
ACCOUNT_SID = "AC" + "b" * 32


class FakeTwilio:
    """Answers POST /2010-04-01/Accounts/<sid>/Messages.json as Twilio does; records when each came."""

    def __init__(self):
        self.times = []
        self.changed = threading.Condition()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as twilio's requests session expects
            disable_nagle_algorithm = True  # headers and body are two writes: no delayed-ACK stall

            def log_message(self, format, *args):
                """Quiet."""

            def do_POST(self):  # noqa: N802 - the name http.server calls
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                if not self.path.endswith("/Messages.json"):
                    self._answer(404, {"code": 20404, "message": "not found", "status": 404})
                    return
                with fake.changed:
                    fake.times.append(time.monotonic())
                    sid = f"SM{len(fake.times):032d}"
                    fake.changed.notify_all()
                self._answer(201, {"sid": sid, "status": "queued", "to": form.get("To", [""])[0],
                                   "body": form.get("Body", [""])[0], "account_sid": ACCOUNT_SID})

            def _answer(self, status, payload):
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def base(self):
        return f"http://{LOOPBACK}:{self.server.server_address[1]}"

    def wait(self, count, timeout, child):
        """Wait until `count` messages came in (or the child died, or time ran out)."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while len(self.times) < count:
                child.check_alive()
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{len(self.times)} of {count} SMS after {timeout:.0f} s; see {child.log_path}")
                self.changed.wait(0.2)

    def stop(self):
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def queue_notices(url, activity, members):
    """Each resident joins the activity: one notice each, written with the sign-up."""
    with world.opened(url), ledger.db.atomic():
        for resident in members:
            activities.join(resident, activity)


def drain(url, env, log_path, activity, warm, members, time_limit, rate):
    """Start a worker, warm it up with one notice, queue the rest; return its rate and memory."""
    fake = FakeTwilio()
    try:
        with Child([PYTHON, "-m", "bench.worker_proc"], env={**env, "BENCH_TWILIO_BASE": fake.base},
                   log_path=log_path) as worker:
            queue_notices(url, activity, [warm])
            fake.wait(1, 120, worker)
            time.sleep(1.0)
            idle = memory_kb(worker.pid)
            reset_peak(worker.pid)
            queue_notices(url, activity, members)
            expected = 1 + len(members)
            fake.wait(expected, min(time_limit, len(members) / rate * 2 + 60) if rate else time_limit, worker)
            time.sleep(0.5)  # anything sent beyond the notices would show up here
            loaded = memory_kb(worker.pid)
        times = fake.times[1:]
        seconds = times[-1] - times[0]
        return {"notices": len(members), "sent": len(fake.times) - 1, "seconds": seconds,
                "notices_per_s": (len(times) - 1) / seconds if seconds > 0 else None}, idle, loaded
    finally:
        fake.stop()


def run(ctx):
    """A worker at SMS_RATE, then one unpaced, on each database."""
    count = ctx.sizes.outbox_notices
    for kind in ctx.kinds:
        url = ctx.databases.fresh(kind, "outbox")
        try:
            with world.opened(url):
                place, boss = world.community()
                activity = world.activity(boss, place, capacity=2 * count + 10)
                members = world.residents(place, 2 * count + 2)
            env = child_env(DATABASE_URL=url, SECRET_KEY=secrets.token_hex(32), TWILIO_ACCOUNT_SID=ACCOUNT_SID,
                            TWILIO_AUTH_TOKEN=secrets.token_hex(16), TWILIO_FROM_NUMBER="+15005550006",
                            PUBLIC_BASE_URL="http://127.0.0.1")
            paced, idle, loaded = drain(url, {**env, "SMS_RATE": str(SMS_RATE)}, ctx.log(f"worker-{kind}"), activity,
                                        members[0], members[2:count + 2], ctx.sizes.time_limit, SMS_RATE)
            ctx.results.add_memory(Memory("worker", kind, idle["VmRSS"], loaded["VmRSS"], loaded["VmHWM"],
                                          f"{count} SMS notices at SMS_RATE={SMS_RATE:g}",
                                          "python -m botapp.worker (via bench.worker_proc)"))
            unpaced, _, _ = drain(url, {**env, "SMS_RATE": "0"}, ctx.log(f"worker-unpaced-{kind}"), activity,
                                  members[1], members[count + 2:], ctx.sizes.time_limit, 0)
            with world.opened(url):
                stuck = Notice.select().where(Notice.status != Notice.SENT).count()
        finally:
            ctx.databases.drop(url)
        if stuck or paced["sent"] != count or unpaced["sent"] != count:
            ctx.results.note(f"{kind}: {stuck} notices not sent; sent {paced['sent']} and {unpaced['sent']} "
                             f"for {count} each")
        command = ctx.command(SECTION, kind)
        ctx.results.add(Figure(SECTION, f"SMS notices/s at SMS_RATE={SMS_RATE:g}", kind, paced["notices_per_s"],
                               SMS_RATE, "/s", "configured SMS_RATE (should reach, not exceed)", command,
                               detail=paced))
        ctx.results.add(Figure(SECTION, "SMS notices/s unpaced (SMS_RATE=0)", kind, unpaced["notices_per_s"],
                               SMS_RATE, "/s", "configured SMS_RATE (headroom)", command, detail=unpaced))
