"""Outbox: SMS notices per second drained by the worker, against the configured SMS_RATE.

The worker runs as its own process (bench/worker_proc.py: botapp.worker's own worker with twilio's
Client pointed at a local fake Messages API in this process). Staff sign residents up for an activity through
community.activities.join, which queues one "signed up" notice each in the same transaction; the
figure is (notices - 1) / (time from the first to the last send) as the fake API saw them. It
should reach SMS_RATE and never exceed it. A second worker with SMS_RATE=0 (no pacing) shows how
far above the configured rate the worker could go. A third sends at SMS_RATE to an API that
answers each message LATENCY seconds later, as Twilio's does from across an ocean: the rate
should not depend on the round trip.
"""

import secrets
import time
from urllib.parse import parse_qs

import ledger
from community import activities
from community.models import Notice

from . import world
from .common import PYTHON, Child, FakeProvider, Figure, Memory, child_env, memory_kb, reset_peak

SECTION = "outbox"
SMS_RATE = 20.0
LATENCY = 0.25
ACCOUNT_SID = "AC" + "b" * 32


class FakeTwilio(FakeProvider):
    """Answers POST /2010-04-01/Accounts/<sid>/Messages.json as Twilio does."""

    def answer(self, path, headers, raw):
        if not path.endswith("/Messages.json"):
            return 404, {"code": 20404, "message": "not found", "status": 404}, False
        form = parse_qs(raw.decode())
        return 201, {"sid": f"SM{len(self.times) + 1:032d}", "status": "queued", "to": form.get("To", [""])[0],
                     "body": form.get("Body", [""])[0], "account_sid": ACCOUNT_SID}, True


def queue_notices(url, activity, members, staff):
    """Staff sign each resident up for the activity: one notice each, written with the sign-up
    (a resident's own sign-up is answered by its reply and queues none)."""
    with world.opened(url), ledger.db.atomic():
        for resident in members:
            activities.join(resident, activity, staff=staff)


def drain(url, env, log_path, activity, staff, warm, members, time_limit, rate, latency=0.0):
    """Start a worker, warm it up with one notice, queue the rest; return its rate and memory."""
    fake = FakeTwilio(latency)
    try:
        with Child([PYTHON, "-m", "bench.worker_proc"], env={**env, "BENCH_TWILIO_BASE": fake.base},
                   log_path=log_path) as worker:
            queue_notices(url, activity, [warm], staff)
            fake.wait(1, 120, worker)
            time.sleep(1.0)
            idle = memory_kb(worker.pid)
            reset_peak(worker.pid)
            queue_notices(url, activity, members, staff)
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
    """A worker at SMS_RATE, one unpaced, and one at SMS_RATE to a slow API, on each database."""
    count = ctx.sizes.outbox_notices
    for kind in ctx.kinds:
        url = ctx.databases.fresh(kind, "outbox")
        try:
            with world.opened(url):
                place, boss = world.community()
                activity = world.activity(boss, place, capacity=3 * count + 10)
                members = world.residents(place, 3 * count + 3)
            env = child_env(DATABASE_URL=url, SECRET_KEY=secrets.token_hex(32), TWILIO_ACCOUNT_SID=ACCOUNT_SID,
                            TWILIO_AUTH_TOKEN=secrets.token_hex(16), TWILIO_FROM_NUMBER="+15005550006",
                            PUBLIC_BASE_URL="http://127.0.0.1")
            paced, idle, loaded = drain(url, {**env, "SMS_RATE": str(SMS_RATE)}, ctx.log(f"worker-{kind}"), activity,
                                        boss, members[0], members[3:count + 3], ctx.sizes.time_limit, SMS_RATE)
            ctx.results.add_memory(Memory("worker", kind, idle["VmRSS"], loaded["VmRSS"], loaded["VmHWM"],
                                          f"{count} SMS notices at SMS_RATE={SMS_RATE:g}",
                                          "python -m botapp.worker (via bench.worker_proc)"))
            unpaced, _, _ = drain(url, {**env, "SMS_RATE": "0"}, ctx.log(f"worker-unpaced-{kind}"), activity,
                                  boss, members[1], members[count + 3:2 * count + 3], ctx.sizes.time_limit, 0)
            slow, _, _ = drain(url, {**env, "SMS_RATE": str(SMS_RATE)}, ctx.log(f"worker-slow-{kind}"), activity,
                               boss, members[2], members[2 * count + 3:], ctx.sizes.time_limit, SMS_RATE, LATENCY)
            with world.opened(url):
                stuck = Notice.select().where(Notice.status != Notice.SENT).count()
        finally:
            ctx.databases.drop(url)
        if stuck or {paced["sent"], unpaced["sent"], slow["sent"]} != {count}:
            ctx.results.note(f"{kind}: {stuck} notices not sent; sent {paced['sent']}, {unpaced['sent']} and "
                             f"{slow['sent']} for {count} each")
        command = ctx.command(SECTION, kind)
        ctx.results.add(Figure(SECTION, f"SMS notices/s at SMS_RATE={SMS_RATE:g}", kind, paced["notices_per_s"],
                               SMS_RATE, "/s", "configured SMS_RATE (should reach, not exceed)", command,
                               detail=paced))
        ctx.results.add(Figure(SECTION, "SMS notices/s unpaced (SMS_RATE=0)", kind, unpaced["notices_per_s"],
                               SMS_RATE, "/s", "configured SMS_RATE (headroom)", command, detail=unpaced))
        ctx.results.add(Figure(SECTION, f"SMS notices/s at SMS_RATE={SMS_RATE:g}, API answering in {LATENCY:g} s",
                               kind, slow["notices_per_s"], SMS_RATE, "/s",
                               "configured SMS_RATE (should reach, not exceed)", command, detail=slow))
