"""Telegram: updates per second through the full bot (`python -m botapp`, which builds the
application with botapp.telegram_bot.build_application), against an echo bot, both polling the
same fake Bot API server.

The fake server is tests/fake_telegram.py, loaded from its file (tests/ is not a package) and
run in this process on loopback. Registered residents send "BAL"; each bot gets N text updates
queued at once, and the figure is N / the time until its N-th reply was posted with sendMessage.
"""

import importlib.util
import secrets
import threading
import time

from botapp.telegram_bot import SORRY

from . import world
from .common import PYTHON, ROOT, Child, Figure, Memory, child_env, cpu_seconds, memory_kb, reset_peak

SECTION = "telegram"
TOKEN = f"424242:{secrets.token_urlsafe(24)}"  # a Bot API token for the fake server only
USERS = 50
FIRST_USER = 810_000


def _fake_telegram_class():
    spec = importlib.util.spec_from_file_location("bench_fake_telegram", ROOT / "tests" / "fake_telegram.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FakeTelegram


def counting_server():
    """A started fake Bot API server that counts the messages bots send through it."""

    class CountingTelegram(_fake_telegram_class()):
        def __init__(self, token):
            super().__init__(token)
            self.sent = 0
            self.sent_changed = threading.Condition()

        def record_and_call(self, method, params, files, content_type):
            result = super().record_and_call(method, params, files, content_type)
            if method.lower() == "sendmessage":
                with self.sent_changed:
                    self.sent += 1
                    self.sent_changed.notify_all()
            return result

        def wait_sent(self, count, timeout, child):
            """Wait until bots sent `count` messages (or the child died, or time ran out)."""
            deadline = time.monotonic() + timeout
            with self.sent_changed:
                while self.sent < count:
                    child.check_alive()
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{self.sent} of {count} replies after {timeout:.0f} s; "
                                           f"see {child.log_path}")
                    self.sent_changed.wait(0.2)

    return CountingTelegram(TOKEN).start()


def measure(argv, env, log_path, updates, time_limit):
    """Start a bot on a fresh fake server, warm it up, feed it `updates` texts; return rate and memory."""
    fake = counting_server()
    try:
        with Child(argv, env={**env, "TELEGRAM_API_BASE": fake.base_url}, log_path=log_path) as bot:
            fake.send_text(FIRST_USER, "BAL")
            fake.wait_sent(1, 120, bot)
            time.sleep(0.5)
            idle = memory_kb(bot.pid)
            reset_peak(bot.pid)
            t0, cpu0 = time.monotonic(), cpu_seconds(bot.pid)
            for i in range(updates):
                fake.send_text(FIRST_USER + i % USERS, "BAL")
            fake.wait_sent(1 + updates, time_limit, bot)
            elapsed, cpu = time.monotonic() - t0, cpu_seconds(bot.pid) - cpu0
            loaded = memory_kb(bot.pid)
            sent = fake.calls_to("sendMessage")
        return {"updates": updates, "seconds": elapsed, "updates_per_s": updates / elapsed,
                "cpu_ms_per_update": 1000 * cpu / updates,
                "failed_sends": sum(1 for c in sent if not c.ok),
                "apologies": sum(1 for c in sent if c.params.get("text") == SORRY)}, idle, loaded
    finally:
        fake.stop()


def run(ctx):
    """The full bot and the echo bot on each database (the echo bot touches none)."""
    updates = ctx.sizes.telegram_updates
    limit = ctx.sizes.time_limit
    for kind in ctx.kinds:
        url = ctx.databases.fresh(kind, "telegram")
        try:
            with world.opened(url):
                place, _ = world.community()
                world.residents(place, USERS, telegram_from=FIRST_USER)
            env = child_env(DATABASE_URL=url, SECRET_KEY=secrets.token_hex(32), TELEGRAM_BOT_TOKEN=TOKEN,
                            TELEGRAM_BOT_USERNAME="linli_bench_bot")
            app, app_idle, app_loaded = measure([PYTHON, "-m", "botapp"], env, ctx.log(f"bot-{kind}"), updates, limit)
            echo, echo_idle, echo_loaded = measure([PYTHON, "-m", "bench.echo_bot"], env, ctx.log(f"echo-{kind}"),
                                                   updates, limit)
        finally:
            ctx.databases.drop(url)
        for role, idle, loaded, command in (("bot", app_idle, app_loaded, "python -m botapp"),
                                            ("bot (PTB echo)", echo_idle, echo_loaded, "python -m bench.echo_bot")):
            ctx.results.add_memory(Memory(role, kind, idle["VmRSS"], loaded["VmRSS"], loaded["VmHWM"],
                                          f"{updates} BAL updates", command))
        if app["failed_sends"] or app["apologies"]:
            ctx.results.note(f"{kind}: of the bot's replies, {app['failed_sends']} were refused by the fake server "
                             f"and {app['apologies']} were its apology for an error (see the bot's log)")
        ctx.results.add(Figure(SECTION, "updates/s (BAL, polling)", kind, app["updates_per_s"],
                               echo["updates_per_s"], "upd/s", "PTB echo bot, same fake server",
                               ctx.command(SECTION, kind), detail={"app": app, "echo": echo}))
