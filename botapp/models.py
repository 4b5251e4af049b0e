"""What the dialogue remembers: each sender's conversation state, and inbound messages seen."""

import datetime

from peewee import BooleanField, CharField, DateTimeField, IntegerField, TextField

from community import contacts
from community.models import Staff
from ledger.models import BaseModel, ForeignKeyField, utcnow


class Conversation(BaseModel):
    """One sender on one channel: where their dialogue stands and what is left to show."""

    channel = CharField(max_length=12)
    address = CharField(max_length=40)
    state = CharField(max_length=30, default="")
    data = TextField(default="{}")
    language = CharField(max_length=8, default="zh_Hans")
    opted_out = BooleanField(default=False)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("channel", "address"), True),)


def contact_of(resident, channel, conversation=None, contact=None):
    """The resident's contact on `channel` (`contact`, when it was just read). A STOP said from
    their address before staff registered it was kept on its conversation, and is carried over
    (only the person can undo it)."""
    contact = contact or contacts.contact(resident, channel)
    address = contacts.address(resident, channel)
    if conversation is None and address is not None:
        conversation = Conversation.get_or_none((Conversation.channel == channel) & (Conversation.address == address))
    if conversation is not None and conversation.opted_out and not contact.opted_out:
        contacts.set_opted_out(resident, channel, True)
        contact.opted_out = True
    return contact


class Inbound(BaseModel):
    """A provider's message or update id, kept so a redelivery has no second effect."""

    key = CharField(max_length=80, unique=True)
    address = CharField(max_length=40, default="", index=True)
    reply = TextField(default="")
    fold = CharField(max_length=64, default="")  # the message folded (case, width, spacing), hashed
    segments = IntegerField(default=0)  # what its reply cost
    created_at = DateTimeField(default=utcnow)


class SimulatorLine(BaseModel):
    """One exchange in a staff member's SMS simulator (the phone masked)."""

    staff = ForeignKeyField(Staff, index=True)
    phone = CharField(max_length=40)
    sent = TextField()
    reply = TextField(default="")
    segments = IntegerField(default=0)
    created_at = DateTimeField(default=utcnow)


def forget_old_inbound(days=8):
    """Forget message and update ids older than `days`: Telegram reuses update ids after a week."""
    cutoff = utcnow() - datetime.timedelta(days=days)
    return Inbound.delete().where(Inbound.created_at < cutoff).execute()
