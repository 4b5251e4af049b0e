"""`python -m bench.worker_proc`: the outbox worker of `python -m botapp.worker`, with its Twilio
REST client sending to a local fake Messages API (BENCH_TWILIO_BASE, e.g. http://127.0.0.1:PORT)
instead of api.twilio.com.

botapp.worker has no setting for Twilio's API address, so this builds the worker exactly as
`build_worker(Settings.from_env())` does and only swaps the twilio Client for one whose HTTP client (twilio's
own TwilioHttpClient, over requests) rewrites the https://api.twilio.com prefix of each request.
"""

import asyncio
import contextlib
import logging
import os
import sys

from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from botapp.settings import Settings
from botapp.worker import build_worker, open_database

TWILIO_API = "https://api.twilio.com"


class LoopbackTwilioHttpClient(TwilioHttpClient):
    """twilio's HTTP client, sending what was meant for api.twilio.com to `base` instead."""

    def __init__(self, base, **kwargs):
        super().__init__(**kwargs)
        self.base = base.rstrip("/")

    def request(self, method, uri, *args, **kwargs):
        if not uri.startswith(TWILIO_API):
            raise ValueError(f"refusing to send to {uri.split('?')[0]}")
        return super().request(method, self.base + uri[len(TWILIO_API):], *args, **kwargs)


def main():
    """Run the worker until stopped."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
    env = os.environ
    settings = Settings.from_env()
    open_database(settings)
    worker = build_worker(settings)
    if worker.sms is None:
        print("TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM_NUMBER must be set", file=sys.stderr)
        return 2
    worker.sms.client = Client(settings.twilio_account_sid, settings.twilio_auth_token,
                               http_client=LoopbackTwilioHttpClient(env["BENCH_TWILIO_BASE"], timeout=30))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(worker.run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
