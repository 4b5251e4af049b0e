"""`python -m botapp.worker`: drain the notices outbox to Telegram and SMS, politely.

Telegram allows about 30 messages a second overall and one a second per chat; SMS goes at the
configured rate (SMS_RATE messages a second). A provider's temporary failure is retried with
exponential backoff; after MAX_ATTEMPTS tries the notice is marked failed for staff to see.
"""

import asyncio
import contextlib
import logging
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from telegram import Bot
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

import ledger
from community import cases, contacts, notices
from community.notices import REPLY, queue_reminders
from ledger import db

from . import android, outbox
from .channels import LogChannel
from .dialogue import SMS, TELEGRAM, Dialogue
from .models import contact_of, forget_old_inbound
from .settings import Settings

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent
#: A batch's notices in progress at once, and the threads they wait in for their provider or the
#: database: enough for the sends a pacer lets out within a slow round trip (20 a second at 0.25 s
#: is 5), fewer than the pool's connections, and few enough not to spend the CPU on switching
#: between them. A send then never queues behind the rest of the batch's database calls.
THREADS = 8


class Pacer:
    """Space sends out: at most `rate` a second overall, and `per_key` seconds apart per key."""

    def __init__(self, rate, per_key=0.0, clock=time.monotonic):
        self.interval = 1.0 / rate if rate else 0.0
        self.per_key = per_key
        self.clock = clock
        self.next_any = 0.0
        self.next_for = {}

    def delay(self, key=None):
        """Seconds to wait before the next send to `key`; books that send."""
        now = self.clock()
        start = max(now, self.next_any, self.next_for.get(key, 0.0) if key is not None else 0.0)
        self.next_any = start + self.interval
        if key is not None and self.per_key:
            self.next_for[key] = start + self.per_key
        return start - now


class TelegramSender:
    """Sends through PTB's Bot."""

    name, daily_limit = TELEGRAM, 0

    def __init__(self, bot):
        self.bot = bot
        self.pacer = Pacer(rate=30, per_key=1.0)

    async def send(self, chat_id, text):
        await asyncio.sleep(self.pacer.delay(chat_id))
        try:
            message = await self.bot.send_message(chat_id=chat_id, text=text)
        except RetryAfter as exc:
            retry = exc.retry_after
            raise outbox.TemporaryFailure("telegram asked us to slow down", retry_after=retry.total_seconds()
                                          if hasattr(retry, "total_seconds") else retry) from None
        except (Forbidden, BadRequest) as exc:
            raise outbox.PermanentFailure(f"telegram refused: {exc.message}") from None
        except (TimedOut, NetworkError) as exc:
            raise outbox.TemporaryFailure(f"telegram unreachable: {exc.message}") from None
        return str(message.message_id)


class SmsSender:
    """Sends through the twilio Client (whose webhook answers inline with TwiML)."""

    name = SMS

    def __init__(self, client, from_number, status_callback=None, rate=1.0, daily_limit=0):
        self.client = client
        self.from_number = from_number
        self.status_callback = status_callback
        self.pacer = Pacer(rate=rate)
        self.daily_limit = daily_limit

    async def send(self, to, text):
        await asyncio.sleep(self.pacer.delay())
        try:
            message = await asyncio.to_thread(
                self.client.messages.create, to=to, from_=self.from_number, body=text,
                **({"status_callback": self.status_callback} if self.status_callback else {}),
            )
        except TwilioRestException as exc:
            if exc.status == 429 or exc.status >= 500:
                raise outbox.TemporaryFailure(f"twilio {exc.status}: {exc.code}") from None
            raise outbox.PermanentFailure(f"twilio {exc.status}: {exc.code}") from None
        except (TwilioException, OSError) as exc:
            raise outbox.TemporaryFailure(f"twilio unreachable: {type(exc).__name__}") from None
        return message.sid


class AndroidSender:
    """The worker's SMS sender through the office phone: its webhook has no inline reply, so the
    dialogue's answers are queued in the outbox."""

    name = SMS

    def __init__(self, url, username, password, rate=1.0, daily_limit=0):
        self.api = android.gateway(url, username, password)
        self.pacer = Pacer(rate=rate)
        self.daily_limit = daily_limit

    def _send(self, to, text):
        with self.api as api:
            state = api.send(android.domain.Message(phone_numbers=[to], with_delivery_report=True,
                                                    text_message=android.domain.TextMessage(text)))
        return state.id

    async def send(self, to, text):
        await asyncio.sleep(self.pacer.delay())
        try:
            return await asyncio.to_thread(self._send, to, text)
        except android.errors.APIError as exc:
            status = getattr(exc, "status_code", None) or 0
            if status == 429 or status >= 500:
                raise outbox.TemporaryFailure(f"phone answered {status}") from None
            raise outbox.PermanentFailure(f"phone refused the message ({status})") from None
        except (android.requests.RequestException, OSError) as exc:
            raise outbox.TemporaryFailure(f"phone unreachable: {type(exc).__name__}") from None


class Worker:
    """One drain loop over the outbox."""

    def __init__(self, dialogue, telegram=None, sms=None, batch=100):
        self.dialogue = dialogue
        self.telegram = telegram
        self.sms = sms
        self.batch = batch
        #: The channels set up here, by name (community.contacts picks among them); the log takes the rest.
        self.channels = {sender.name: sender for sender in (telegram, sms) if sender is not None}
        self.log = LogChannel()
        self.capped = None  # the lock of the batch being sent

    async def _db(self, function, *args, **kwargs):
        def work():
            with db.connection_context():
                return function(*args, **kwargs)

        return await asyncio.to_thread(work)

    def batch_size(self):
        """A batch small enough to be sent well within its lease at the slowest channel's rate."""
        if self.sms is None or not self.sms.pacer.interval:
            return self.batch
        seconds = outbox.LEASE.total_seconds() / 2
        return max(1, min(self.batch, int(seconds / self.sms.pacer.interval)))

    async def drain_once(self):
        """Claim one batch and send it; return how many notices were handled.

        A batch holds at most one notice per person, so its notices go out side by side: each
        channel's pacer still spaces them, but the wait for an answer from a phone on Wi-Fi or
        from Telegram's servers no longer sets how many go out a second.
        """
        notices = await self._db(outbox.claim, self.batch_size())
        self.capped = asyncio.Lock()  # a capped sender counts what it has sent: one send at a time
        at_once = asyncio.Semaphore(THREADS)

        async def deliver(notice):
            async with at_once:
                await self.deliver(notice)

        # Every notice finishes before the next claim, which may hold the same people's next ones.
        outcomes = await asyncio.gather(*map(deliver, notices), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return len(notices)

    async def deliver(self, notice):
        """Send one claimed notice; whatever goes wrong is recorded on it, never lost."""
        try:
            await self._deliver(notice)
        except Exception as exc:  # a bug or a database hiccup must not stall the outbox
            log.exception("notice %s could not be delivered", notice.id)
            await self._db(outbox.mark_retry, notice, f"{type(exc).__name__}: {exc}")

    async def _deliver(self, notice):
        if notice.kind == REPLY:
            return await self._reply(notice)
        resident = await self._db(outbox.resident_of, notice)
        await self._db(contact_of, resident, SMS)  # a STOP the number sent before it was registered
        channel = await self._db(contacts.reach, resident, notices.purpose(notice), list(self.channels))
        if channel is None:
            await self._db(outbox.mark_skipped, notice, "no channel: opted out, or no number and no Telegram")
            return
        text = await self._db(outbox.render, notice, resident, self.dialogue, channel)
        if channel == contacts.LOG:
            channel, address, sender = SMS, resident.phone or "", self.log
        else:
            address, sender = contacts.address(resident, channel), self.channels[channel]
        asks = notice.kind == notices.CASE_HANDLED and notices.notice_params(notice).get("ask")
        if await self._send(notice, sender, address, text) and asks:
            # The notice asked its reporter "is it solved? 1 / 2": their next 1 or 2 answers it.
            await self._db(self.dialogue.ask_verification, channel, address, notices.notice_params(notice)["case"])

    async def _reply(self, notice):
        """The dialogue's answer to an SMS, to the number it answers (queued by providers that take
        no inline reply)."""
        await self._send(notice, self.channels.get(SMS, self.log), notice.address, outbox.reply_text(notice))

    async def _send(self, notice, sender, to, text):
        if not sender.daily_limit:
            return await self._send_now(notice, sender, to, text)
        async with self.capped:
            if await self._db(outbox.sent_today, sender.name) >= sender.daily_limit:
                # Carriers throttle personal SIMs: hold, never drop.
                await self._db(outbox.mark_held, notice, "the daily SMS limit is reached")
                return False
            return await self._send_now(notice, sender, to, text)

    async def _send_now(self, notice, sender, to, text):
        try:
            provider_id = await sender.send(to, text)
        except outbox.TemporaryFailure as exc:
            log.warning("notice %s: %s", notice.id, exc)
            await self._db(outbox.mark_retry, notice, exc, exc.retry_after)
        except outbox.PermanentFailure as exc:
            log.warning("notice %s: %s", notice.id, exc)
            await self._db(outbox.mark_failed, notice, exc)
        else:
            await self._db(outbox.mark_sent, notice, sender.name, provider_id)
            return True
        return False

    async def run(self, idle=1.0, stop=None, reminders_every=300):
        """Drain until `stop` is set, sleeping `idle` seconds when there is nothing to send.

        Every `reminders_every` seconds it also queues tomorrow's reminders (once per sign-up) and
        takes cases gone very late up to the coordinators (once per step).
        """
        stop = stop or asyncio.Event()
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(THREADS, "outbox"))
        next_reminders = 0.0
        while not stop.is_set():
            if time.monotonic() >= next_reminders:
                await self._db(queue_reminders)
                await self._db(cases.escalate)
                await self._db(forget_old_inbound)
                next_reminders = time.monotonic() + reminders_every
            try:
                handled = await self.drain_once()
            except Exception:  # one bad batch must not stop the worker; log it and go on
                log.exception("draining the outbox failed")
                handled = 0
            if not handled:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=idle)


def build_worker(settings):
    """Build a worker from the settings; unconfigured channels go to the log."""
    dialogue = Dialogue(str(ROOT / "translations"), region=settings.default_region, timezone=settings.timezone)
    telegram = None
    if settings.telegram_bot_token:
        telegram = TelegramSender(Bot(settings.telegram_bot_token, base_url=settings.telegram_api_base))
    return Worker(dialogue, telegram=telegram, sms=build_sms_sender(settings))


def build_sms_sender(settings):
    """The SMS sender of the settings' provider (twilio or android), or none: notices go to the log."""
    s = settings
    if s.sms_provider == "android":
        return AndroidSender(s.android_sms_url, s.android_sms_username, s.android_sms_password,
                             rate=s.sms_rate, daily_limit=s.sms_daily_limit)
    if s.sms_provider == "twilio":
        base = s.public_base_url.rstrip("/")
        return SmsSender(
            Client(s.twilio_account_sid, s.twilio_auth_token, http_client=TwilioHttpClient(timeout=30)),
            s.twilio_from_number,
            status_callback=f"{base}/sms/status" if base.startswith("https://") else None,
            rate=s.sms_rate, daily_limit=s.sms_daily_limit,
        )
    return None


async def _main(settings):
    worker = build_worker(settings)
    if worker.telegram:
        async with worker.telegram.bot:
            await worker.run()
    else:
        await worker.run()


def open_database(settings):
    """The worker's database, its connections pooled: every call it makes runs in a thread of
    its own and would otherwise open one."""
    ledger.open_database(settings.database_url, base_dir=ROOT, pool=True, key=settings.ledger_key)


def main():
    """Run the outbox worker until interrupted."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Their request lines carry the bot token and residents' full phone numbers.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
    settings = Settings.from_env()
    open_database(settings)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
