"""Goods, stock movements, counter codes and redemptions of a community's points supermarket."""

from peewee import BooleanField, CharField, Check, DateTimeField, IntegerField, TextField

from community.models import Community, Resident, Staff
from ledger import Transfer
from ledger.models import BaseModel, ForeignKeyField, utcnow


class Goods(BaseModel):
    """Something on the shelf, priced in hundredths of a point."""

    MONTH, WEEK = "month", "week"
    PERIODS = (MONTH, WEEK)

    community = ForeignKeyField(Community, backref="goods")
    name_zh = CharField(max_length=60)
    name_en = CharField(max_length=60)
    price = IntegerField()
    stock = IntegerField(default=0, constraints=[Check("stock >= 0")])
    limit_quantity = IntegerField(null=True)
    limit_period = CharField(max_length=10, null=True)
    active = BooleanField(default=True)
    created_at = DateTimeField(default=utcnow)

    def name(self, language):
        return (self.name_en or self.name_zh) if language == "en" else self.name_zh


class StockMovement(BaseModel):
    """One change of stock; the stock on hand is always the sum of these."""

    RECEIVED, ADJUSTED, REDEEMED, RETURNED = "received", "adjusted", "redeemed", "returned"

    goods = ForeignKeyField(Goods, backref="movements")
    kind = CharField(max_length=12)
    quantity = IntegerField()
    reason = TextField(default="")
    staff = ForeignKeyField(Staff, null=True)
    created_at = DateTimeField(default=utcnow)


class CounterCode(BaseModel):
    """A one-time code a resident shows (QR) or reads out (SMS digits) at the counter, or opens
    in Telegram to link it to their record (link)."""

    QR, DIGITS, LINK = "qr", "digits", "link"

    code = CharField(max_length=16)  # codes.stored(kind, code): a keyed hash, never the code itself
    kind = CharField(max_length=8)
    resident = ForeignKeyField(Resident, backref="counter_codes")
    created_at = DateTimeField(default=utcnow)
    expires_at = DateTimeField()
    used_at = DateTimeField(null=True)
    replaced_at = DateTimeField(null=True)
    failed_attempts = IntegerField(default=0)

    class Meta:
        indexes = ((("code", "kind"), False),)


class MemberCard(BaseModel):
    """A printed member card. Its QR code only tells the counter whose card it is: spending
    also needs the six-digit code the counter then sends to the resident."""

    code = CharField(max_length=16, unique=True)
    resident = ForeignKeyField(Resident, backref="cards")
    issued_by = ForeignKeyField(Staff, null=True)
    issued_at = DateTimeField(default=utcnow)
    revoked_at = DateTimeField(null=True)
    pin_hash = CharField(max_length=200, null=True)  # for holders with no phone: see catalog.cards
    pin_failures = IntegerField(default=0)


class Redemption(BaseModel):
    """One checkout at the counter: goods paid in points, all in one transaction."""

    DONE, VOIDED = "done", "voided"

    resident = ForeignKeyField(Resident, backref="redemptions")
    community = ForeignKeyField(Community)
    clerk = ForeignKeyField(Staff)
    transfer = ForeignKeyField(Transfer, unique=True)
    total = IntegerField()
    status = CharField(max_length=10, default=DONE)
    void_reason = TextField(default="")
    checkout_key = CharField(max_length=80, unique=True)
    created_at = DateTimeField(default=utcnow)


class RedemptionLine(BaseModel):
    """One line of a redemption: which goods, how many, at what price."""

    redemption = ForeignKeyField(Redemption, backref="lines")
    goods = ForeignKeyField(Goods)
    quantity = IntegerField()
    price = IntegerField()
