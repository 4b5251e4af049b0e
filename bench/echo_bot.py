"""The floor for the Telegram figure: a minimal PTB Application that replies each text with itself.

`python -m bench.echo_bot` with TELEGRAM_BOT_TOKEN and TELEGRAM_API_BASE, polling like `python -m
botapp` does (run_polling with its defaults, updates one at a time).
"""

import logging
import os
import sys

from telegram import Update
from telegram.ext import Application, ContextTypes, MessageHandler, filters


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Reply with the same text."""
    await update.effective_chat.send_message(update.message.text)


def main():
    """Poll until stopped."""
    logging.basicConfig(level=logging.WARNING)
    application = (
        Application.builder().token(os.environ["TELEGRAM_BOT_TOKEN"])
        .base_url(os.environ["TELEGRAM_API_BASE"]).concurrent_updates(False).build()
    )
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    application.run_polling()
    return 0


if __name__ == "__main__":
    sys.exit(main())
