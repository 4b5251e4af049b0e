"""`python -m botapp`: run the Telegram bot (polling, or PTB's webhook server when configured)."""

import logging
import os
import sys
from pathlib import Path

import ledger

from .dialogue import Dialogue
from .settings import IncompleteSettings, Settings
from .telegram_bot import build_application

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("botapp")


def keep_to_one_cpu(choice=""):
    """Keep this thread, and every thread it starts from now on, to one CPU (Linux); return it,
    or None when nothing was changed.

    The bot is one Python process: its event loop and the threads doing the database work take
    turns with the interpreter lock. Spread over two CPUs, each turn wakes a thread on the other
    one; kept to one, the bot spent about a quarter less CPU an update (BENCHMARKS.md, Telegram).
    `choice`: "" the CPU this process starts on, a number, or "any" to leave it to the system.
    """
    if choice == "any" or not hasattr(os, "sched_setaffinity"):
        return None
    allowed = os.sched_getaffinity(0)
    if choice:
        cpu = int(choice)
        if cpu not in allowed:
            listed = ", ".join(str(n) for n in sorted(allowed))
            raise IncompleteSettings(f"BOT_CPU is {choice!r}: this process may use CPU {listed}")
    elif len(allowed) == 1:
        return None
    else:
        cpu = _current_cpu()
        cpu = cpu if cpu in allowed else min(allowed)
    os.sched_setaffinity(0, {cpu})
    return cpu


def _current_cpu():
    """The CPU this process last ran on (the 39th field of /proc/self/stat), or None."""
    try:
        with open("/proc/self/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[36])
    except (OSError, IndexError, ValueError):
        return None


def main():
    """Read the environment, build the application and run it until stopped."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its request lines carry the bot token
    settings = Settings.from_env()
    if not settings.telegram_bot_token:
        print("TELEGRAM_BOT_TOKEN is not set: the Telegram bot is disabled.", file=sys.stderr)
        return 2
    cpu = keep_to_one_cpu(settings.bot_cpu)  # before any thread starts: they inherit it
    if cpu is not None:
        log.info("kept to CPU %s (BOT_CPU)", cpu)
    ledger.open_database(settings.database_url, base_dir=ROOT, pool=True, key=settings.ledger_key)
    dialogue = Dialogue(str(ROOT / "translations"), region=settings.default_region, timezone=settings.timezone,
                        code_secret=settings.secret_key, bot_username=settings.telegram_bot_username)
    application = build_application(settings.telegram_bot_token, dialogue, base_url=settings.telegram_api_base)
    if settings.telegram_webhook_url:
        application.run_webhook(
            listen=settings.telegram_webhook_listen,
            port=settings.telegram_webhook_port,
            url_path=settings.telegram_webhook_path,
            webhook_url=settings.telegram_webhook_url,
            secret_token=settings.telegram_webhook_secret,
        )
    else:
        application.run_polling()
    return 0


if __name__ == "__main__":
    sys.exit(main())
