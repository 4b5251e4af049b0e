"""SMS through the community office's own Android phone, running SMS Gateway for Android in its
Local server mode on the office network (the app's official client, `android-sms-gateway`).

Inbound: the app posts webhooks (`sms:received`; `sms:sent`, `sms:delivered`, `sms:failed` for
delivery status), signed with the app's signing key: `X-Signature` is the hex HMAC-SHA256 of the
raw body followed by `X-Timestamp`. The app retries for days and its `messageId` is derived from
the content, so each event is handled once per event `id`. There is no TwiML: the reply is
queued in the outbox in the same transaction as its effects and sent by the worker, so a reply is
as reliable as a notice.
"""

import datetime
import hashlib
import hmac
import logging
import time

import requests
from android_sms_gateway import client, domain, errors
from android_sms_gateway.enums import WebhookEvent
from android_sms_gateway.http import RequestsHttpClient

from community.people import mask_phone

from . import outbox, sms

log = logging.getLogger(__name__)

#: Webhooks older or newer than this are refused (a replayed or badly clocked request).
MAX_SKEW = datetime.timedelta(minutes=5)
EVENTS = ("sms:received", "sms:sent", "sms:delivered", "sms:failed")
TIMEOUT = 15  # seconds: a phone that stops answering must not stall the worker


def signed(body, signature, timestamp, key, now=None):
    """Tell whether a webhook carries the app's signature and a timestamp within MAX_SKEW."""
    if not key or not signature or not timestamp:
        return False
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs((now or time.time()) - sent) > MAX_SKEW.total_seconds():
        return False
    expected = hmac.new(key.encode(), body + timestamp.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature.strip().lower())


def handle_event(dialogue, event, now=None):
    """Handle one webhook event once per event id; return what was done (for the log)."""
    if not isinstance(event, dict) or not isinstance(event.get("payload"), dict) or not event.get("id"):
        raise ValueError("not a webhook event")
    kind, payload = event.get("event"), event["payload"]
    if kind == "sms:received":
        return _received(dialogue, str(event["id"]), payload, now)
    if kind in ("sms:sent", "sms:delivered", "sms:failed"):
        status = kind.split(":", 1)[1]
        outbox.record_delivery_status(str(payload.get("messageId", "")), status, str(payload.get("reason", ""))[:10])
        return status
    return "ignored"


def _received(dialogue, event_id, payload, now):
    sender, text = payload.get("phoneNumber") or payload.get("sender"), payload.get("message")
    if not isinstance(sender, str) or not isinstance(text, str):
        raise ValueError("an sms:received event without a sender or a text")
    first_time = sms.answer(dialogue, f"android:{event_id}", sender, text, now=now, queue=True)[2]
    return "answered" if first_time else "seen before"


class _Session(requests.Session):
    """A session whose requests time out (the client library sets none)."""

    def request(self, *args, **kwargs):
        kwargs.setdefault("timeout", TIMEOUT)
        return super().request(*args, **kwargs)


def gateway(url, username, password):
    """The app's client for the phone at `url` (use it as a context manager)."""
    return client.APIClient(username, password, base_url=url.rstrip("/"), http=RequestsHttpClient(_Session()))


def check(url, username, password):
    """Ask the phone whether it is up; return (ok, what it said)."""
    try:
        with gateway(url, username, password) as api:
            health = api.health_check()
    except errors.UnauthorizedError:
        return False, "the phone refused the username or password"
    except (errors.APIError, requests.RequestException, OSError) as exc:
        return False, f"the phone did not answer ({type(exc).__name__})"
    return health.status.value in ("pass", "warn"), f"the phone answers: {health.status.value}"


def register_webhooks(url, username, password, public_base_url):
    """Register our /sms/android for the events we handle (once each); return the events added."""
    target = public_base_url.rstrip("/") + "/sms/android"
    with gateway(url, username, password) as api:
        present = {(w.url, w.event.value) for w in api.get_webhooks()}
        added = []
        for event in EVENTS:
            if (target, event) not in present:
                api.create_webhook(domain.Webhook(id=None, url=target, event=WebhookEvent(event)))
                added.append(event)
    return added


def describe(event):
    """A log line for an event: its kind and a masked sender, never the text."""
    payload = event.get("payload") if isinstance(event, dict) else None
    who = mask_phone(payload.get("phoneNumber", "")) if isinstance(payload, dict) else ""
    return f"{event.get('event') if isinstance(event, dict) else '?'} {who}".strip()

