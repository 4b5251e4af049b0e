"""Every setting Linli reads from the environment, with its default, in one place.

Each entry point (the web app and its CLI, the Telegram bot, the outbox worker) builds one
`Settings` at start-up with `Settings.from_env()`, which refuses an incomplete or malformed setup
with a message naming the variable, instead of failing later on the first SMS.
"""

import dataclasses
import hashlib
import hmac
import os
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .instance import secret_key

ROOT = Path(__file__).resolve().parent.parent

TWILIO = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER")
ANDROID = ("ANDROID_SMS_URL", "ANDROID_SMS_USERNAME", "ANDROID_SMS_PASSWORD")


class IncompleteSettings(SystemExit):
    """The environment does not make a working setup; the message names the variable."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """The fields are the environment variables, lower-cased; `as_config` gives them upper-cased."""

    database_url: str = "sqlite:///instance/linli.db"
    secret_key: str = ""
    ledger_key: bytes = b""
    public_base_url: str = "http://127.0.0.1:5000"
    default_region: str = "CN"
    timezone: str = "Asia/Shanghai"
    trusted_proxies: int = 0
    # "twilio", "android", or "" (development: SMS go to the log)
    sms_provider: str = ""
    sms_rate: float = 1.0
    sms_daily_limit: int = 0
    sms_price_per_segment: str = "0.05"
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_from_number: str = ""
    android_sms_url: str = ""
    android_sms_username: str = ""
    android_sms_password: str = ""
    android_sms_signing_key: str = ""
    telegram_bot_token: str = ""
    telegram_bot_username: str = ""
    telegram_api_base: str = "https://api.telegram.org/bot"
    telegram_webhook_url: str = ""
    telegram_webhook_secret: str = ""
    telegram_webhook_listen: str = "127.0.0.1"
    telegram_webhook_port: int = 8443
    telegram_webhook_path: str = "telegram"
    # the CPU the Telegram bot keeps to: "" the one it starts on, a number, or "any" (not kept)
    bot_cpu: str = ""

    @classmethod
    def from_env(cls, env=None, instance_dir=ROOT / "instance"):
        """Read the environment; raise IncompleteSettings naming what is missing or malformed."""
        env = os.environ if env is None else env
        values = {}
        for field in dataclasses.fields(cls):
            name = field.name.upper()
            raw = (env.get(name) or "").strip()
            if not raw or field.type is bytes:
                continue
            if field.type in (int, float):
                try:
                    values[field.name] = field.type(raw)
                except ValueError:
                    raise IncompleteSettings(f"{name} is {raw!r}: it must be a number") from None
                if values[field.name] < 0:
                    raise IncompleteSettings(f"{name} is {raw!r}: it must not be negative")
            else:
                values[field.name] = raw
        values["secret_key"] = secret_key(instance_dir, env)
        values["ledger_key"] = ledger_key(env.get("LEDGER_KEY", ""), values["secret_key"])
        values["sms_provider"] = _sms_provider(values)
        settings = cls(**values)
        settings._check()
        return settings

    def _check(self):
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise IncompleteSettings(f"TIMEZONE is {self.timezone!r}: not a time zone (e.g. Asia/Shanghai)") from None
        if len(self.default_region) != 2 or not self.default_region.isalpha():
            raise IncompleteSettings(f"DEFAULT_REGION is {self.default_region!r}: a two-letter country code (CN)")
        if self.bot_cpu and self.bot_cpu != "any" and not self.bot_cpu.isdigit():
            raise IncompleteSettings(f"BOT_CPU is {self.bot_cpu!r}: a CPU number (0, 1, …) or any")
        if self.telegram_webhook_url and not self.telegram_webhook_secret:
            raise IncompleteSettings("TELEGRAM_WEBHOOK_SECRET must be set with TELEGRAM_WEBHOOK_URL")

    def as_config(self):
        """The settings as Flask config keys (DATABASE_URL, ...)."""
        return {field.name.upper(): getattr(self, field.name) for field in dataclasses.fields(self)}


def ledger_key(explicit, secret):
    """LEDGER_KEY, else a key derived from SECRET_KEY: it seals ledger entries and signs checkpoints
    and never lives in the database."""
    if explicit:
        return explicit.encode()
    return hmac.new(secret.encode(), b"linli ledger checkpoint", hashlib.sha256).digest()


def _sms_provider(values):
    provider = values.get("sms_provider", "").lower()
    if not provider:
        return "twilio" if all(values.get(name.lower()) for name in TWILIO) else ""
    if provider not in ("twilio", "android"):
        raise IncompleteSettings(f"SMS_PROVIDER is {provider!r}: it must be twilio or android")
    missing = [name for name in (ANDROID if provider == "android" else TWILIO) if not values.get(name.lower())]
    if missing:
        raise IncompleteSettings(f"SMS_PROVIDER={provider} needs {', '.join(missing)}")
    return provider
