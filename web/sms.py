"""The SMS providers' webhooks: Twilio's inbound SMS (answered with TwiML) and delivery status
callbacks, and the Android gateway's events (answered through the outbox)."""

import hmac
import json
import logging

from flask import Blueprint, abort, current_app, request
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from botapp import android, sms
from botapp.outbox import record_delivery_status

bp = Blueprint("sms", __name__, url_prefix="/sms")
log = logging.getLogger(__name__)


def _verify_signature():
    """Refuse (403) any request not signed by Twilio with our auth token."""
    token = current_app.config.get("TWILIO_AUTH_TOKEN")
    signature = request.headers.get("X-Twilio-Signature", "")
    url = current_app.config["PUBLIC_BASE_URL"].rstrip("/") + request.full_path.rstrip("?")
    if not token or not signature or not _signed(RequestValidator(token), url, request.form, signature):
        log.warning("unsigned or forged request to %s refused", request.path)
        abort(403)


def _signed(validator, url, form, signature):
    """Twilio signs the URL we configured; the library's check (which always computes the
    signature twice, with and without a port) decides when that one does not match."""
    return (hmac.compare_digest(validator.compute_signature(url, form).encode(), signature.encode())
            or validator.validate(url, form, signature))


def _twiml(text):
    response = MessagingResponse()
    if text:
        response.message(text)
    return str(response), 200, {"Content-Type": "application/xml; charset=utf-8"}


@bp.post("/inbound")
def inbound():
    """A resident's SMS: answer it through the dialogue, once per MessageSid."""
    _verify_signature()
    sid = request.form.get("MessageSid", "")
    if not sid:
        abort(400)
    reply = sms.receive(current_app.extensions["linli.dialogue"], sid, request.form.get("From", ""),
                        request.form.get("Body", ""))
    return _twiml(reply)


@bp.post("/status")
def status():
    """Record a delivery status callback for a message we sent."""
    _verify_signature()
    record_delivery_status(request.form.get("MessageSid", ""), request.form.get("MessageStatus", ""),
                           request.form.get("ErrorCode", ""))
    return "", 204


@bp.post("/android")
def android_event():
    """An event of the office phone's SMS Gateway app, signed with its signing key; handled once
    per event id (the app retries for days)."""
    body = request.get_data(cache=False)
    if not android.signed(body, request.headers.get("X-Signature", ""), request.headers.get("X-Timestamp", ""),
                          current_app.config.get("ANDROID_SMS_SIGNING_KEY", "")):
        log.warning("unsigned, forged or stale request to %s refused", request.path)
        abort(403)
    try:
        event = json.loads(body)
        done = android.handle_event(current_app.extensions["linli.dialogue"], event)
    except (ValueError, TypeError, KeyError):
        abort(400)
    log.info("android gateway: %s: %s", android.describe(event), done)
    return "", 204
