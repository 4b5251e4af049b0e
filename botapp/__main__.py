"""`python -m botapp`: run the Telegram bot (polling, or PTB's webhook server when configured)."""

import logging
import os
import sys
from pathlib import Path

import ledger

from .dialogue import Dialogue
from .instance import secret_key
from .telegram_bot import build_application

ROOT = Path(__file__).resolve().parent.parent


def main():
    """Read the environment, build the application and run it until stopped."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its request lines carry the bot token
    env = os.environ.get
    token = env("TELEGRAM_BOT_TOKEN")
    if not token:
        print("TELEGRAM_BOT_TOKEN is not set: the Telegram bot is disabled.", file=sys.stderr)
        return 2
    ledger.open_database(env("DATABASE_URL", "sqlite:///instance/linli.db"), base_dir=ROOT, pool=True)
    dialogue = Dialogue(str(ROOT / "translations"), region=env("DEFAULT_REGION", "CN"),
                        timezone=env("TIMEZONE", "Asia/Shanghai"), code_secret=secret_key(ROOT / "instance"),
                        bot_username=env("TELEGRAM_BOT_USERNAME", ""))
    base_url = env("TELEGRAM_API_BASE", "https://api.telegram.org/bot")
    application = build_application(token, dialogue, base_url=base_url)
    webhook_url = env("TELEGRAM_WEBHOOK_URL")
    if webhook_url:
        secret = env("TELEGRAM_WEBHOOK_SECRET")
        if not secret:
            print("TELEGRAM_WEBHOOK_SECRET must be set with TELEGRAM_WEBHOOK_URL.", file=sys.stderr)
            return 2
        application.run_webhook(
            listen=env("TELEGRAM_WEBHOOK_LISTEN", "127.0.0.1"),
            port=int(env("TELEGRAM_WEBHOOK_PORT", "8443")),
            url_path=env("TELEGRAM_WEBHOOK_PATH", "telegram"),
            webhook_url=webhook_url,
            secret_token=secret,
        )
    else:
        application.run_polling()
    return 0


if __name__ == "__main__":
    sys.exit(main())
