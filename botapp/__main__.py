"""`python -m botapp`: run the Telegram bot (polling, or PTB's webhook server when configured)."""

import logging
import sys
from pathlib import Path

import ledger

from .dialogue import Dialogue
from .settings import Settings
from .telegram_bot import build_application

ROOT = Path(__file__).resolve().parent.parent


def main():
    """Read the environment, build the application and run it until stopped."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its request lines carry the bot token
    settings = Settings.from_env()
    if not settings.telegram_bot_token:
        print("TELEGRAM_BOT_TOKEN is not set: the Telegram bot is disabled.", file=sys.stderr)
        return 2
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
