"""Channels: what each way of reaching a resident can carry, and the adapter every sender is.

The dialogue and the outbox ask a channel's capabilities instead of naming channels: whether a
message must fit an SMS segment budget (and names its sender, 【东梅社区】, as Chinese SMS do),
whether it can carry a picture or buttons. A sender (the worker's adapters for Twilio, the
Android gateway, Telegram, and the development log) is an object with a `name` (the channel it
sends on), `daily_limit` (0: none) and `async send(address, text)` returning
the provider's message id, or raising outbox.TemporaryFailure / PermanentFailure. Adding a
channel is one adapter, its settings and its webhook; `community.contacts` says who is reached on it.
"""

import dataclasses
import logging
import re

from community.contacts import LOG, SMS, TELEGRAM
from community.people import mask_phone

from .segments import MAX_SEGMENTS

log = logging.getLogger("botapp.worker")


@dataclasses.dataclass(frozen=True)
class Capabilities:
    segment_budget: int = 0  # SMS segments a message may take (0: no budget)
    images: bool = False
    buttons: bool = False


#: What each channel can carry, whoever provides it.
CAPABILITIES = {
    SMS: Capabilities(segment_budget=MAX_SEGMENTS),
    TELEGRAM: Capabilities(images=True, buttons=True),
    LOG: Capabilities(segment_budget=MAX_SEGMENTS),  # written as the SMS would be
}


def capabilities(channel):
    return CAPABILITIES[channel]


def redacted(text):
    """A text with any one-time code (six digits, or a signed ten-character code) hidden, for logs."""
    return re.sub(r"(?<!\d)\d{6}(?!\d)|(?<![A-Z0-9])[A-Z2-9]{10}(?![A-Z0-9])", "******", text)


def log_line(address, channel, text):
    """What the log says of a message: never a full phone number."""
    return f"notice to {mask_phone(address) or 'telegram user'} via {channel}: {text}"


class LogChannel:
    """Development, or a channel not set up here: the message goes to the worker's log, its codes
    hidden and the number masked."""

    name = LOG
    daily_limit = 0

    async def send(self, address, text):
        log.info(log_line(address, "log (channel not configured)", redacted(text)))
        return ""
