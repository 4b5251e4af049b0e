"""Accounts, transfers and entries."""

import contextlib
import contextvars
import datetime

import peewee
from peewee import BigIntegerField, CharField, DateTimeField, IntegerField, Model, TextField

from .db import db, prepared
from .errors import AppendOnly

GENESIS_HASH = "0" * 64


_past_moment = contextvars.ContextVar("past_moment", default=None)


def utcnow():
    """Return the current UTC time as a naive datetime (how the ledger stores time)."""
    return _past_moment.get() or datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


@contextlib.contextmanager
def happening_at(moment):
    """Record what is done inside as done at `moment`, a naive UTC time in the past: how the demo
    district writes its past weeks, in order. No request, message or command of staff uses it."""
    if moment > utcnow():
        raise ValueError("only the past can be written")
    token = _past_moment.set(moment)
    try:
        yield
    finally:
        _past_moment.reset(token)


def to_local(moment, zone):
    """A stored time (naive UTC) as naive local time in the time zone `zone`."""
    return moment.replace(tzinfo=datetime.UTC).astimezone(zone).replace(tzinfo=None)


def from_local(moment, zone):
    """A naive local time in `zone` as the naive UTC the database stores."""
    return moment.replace(tzinfo=zone).astimezone(datetime.UTC).replace(tzinfo=None)


#: One compiled primary-key read per model (see BaseModel.by_id).
_BY_ID = {}


class BaseModel(Model):
    class Meta:
        database = db
        legacy_table_names = False

    @classmethod
    def by_id(cls, pk):
        """The row with this primary key, or None. Its query is compiled once per model: reading
        one row by its key is what most requests do most often."""
        read = _BY_ID.get(cls)
        if read is None:
            read = _BY_ID[cls] = prepared(lambda key: cls.select().where(cls._meta.primary_key == key))
        rows = read(cls._meta.primary_key.db_value(pk))
        return rows[0] if rows else None

    @classmethod
    def get_by_id(cls, pk):
        found = cls.by_id(pk)
        if found is None:
            raise cls.DoesNotExist(f"{cls.__name__} {pk!r} does not exist")
        return found


class _ByIdAccessor(peewee.ForeignKeyAccessor):
    """Follows a foreign key to its row with the compiled primary-key read."""

    def get_rel_instance(self, instance):
        value = instance.__data__.get(self.name)
        if (value is not None and self.name not in instance.__rel__ and self.field.lazy_load
                and self.field.rel_field is self.rel_model._meta.primary_key):
            instance.__rel__[self.name] = self.rel_model.get_by_id(value)
        return super().get_rel_instance(instance)


class ForeignKeyField(peewee.ForeignKeyField):
    """peewee's foreign key, followed with a compiled query (every Linli model uses this one)."""

    accessor_class = _ByIdAccessor


class Account(BaseModel):
    """A holder of points. Only issuer accounts may go below zero."""

    RESIDENT, ISSUER, SHOP = "resident", "issuer", "shop"
    KINDS = (RESIDENT, ISSUER, SHOP)

    code = CharField(max_length=100, unique=True)
    kind = CharField(max_length=20)
    name = CharField(max_length=200, default="")
    balance = BigIntegerField(default=0)
    version = IntegerField(default=0)
    head_hash = CharField(max_length=64, default=GENESIS_HASH)
    created_at = DateTimeField(default=utcnow)

    @property
    def may_go_negative(self):
        return self.kind == self.ISSUER


class AppendOnlyModel(BaseModel):
    """A model whose rows, once written, are never updated or deleted."""

    def save(self, force_insert=False, only=None):
        if self._pk is not None and not force_insert:
            raise AppendOnly()
        return super().save(force_insert=force_insert, only=only)

    def delete_instance(self, *args, **kwargs):
        raise AppendOnly()

    @classmethod
    def update(cls, *args, **kwargs):
        raise AppendOnly()

    @classmethod
    def delete(cls):
        raise AppendOnly()

    @classmethod
    def replace(cls, *args, **kwargs):
        raise AppendOnly()


class Transfer(AppendOnlyModel):
    """One posting: entries that sum to zero, made once per idempotency key."""

    AWARD, REDEEM, REVERSAL, ADJUSTMENT = "award", "redeem", "reversal", "adjustment"
    KINDS = (AWARD, REDEEM, REVERSAL, ADJUSTMENT)

    idempotency_key = CharField(max_length=200, unique=True)
    kind = CharField(max_length=20)
    memo = TextField(default="")
    actor = CharField(max_length=100)
    created_at = DateTimeField(default=utcnow)
    # Unique: a transfer is reversed at most once, and the database holds that rule.
    reverses = ForeignKeyField("self", null=True, unique=True, backref="reversals")
    fingerprint = CharField(max_length=64)
    digest = CharField(max_length=64)


class Entry(AppendOnlyModel):
    """One account's side of a transfer, chained to that account's previous entry."""

    transfer = ForeignKeyField(Transfer, backref="entries")
    account = ForeignKeyField(Account, backref="entries")
    seq = IntegerField()
    amount = BigIntegerField()
    balance_after = BigIntegerField()
    prev_hash = CharField(max_length=64)
    hash = CharField(max_length=64)
    # HMAC of `hash` under the ledger key; empty only on entries written before seals, which a
    # stored Checkpoint vouches for instead.
    seal = CharField(max_length=64, null=True)

    class Meta:
        indexes = ((("account", "seq"), True),)


class Checkpoint(AppendOnlyModel):
    """A signed checkpoint kept in the database: it vouches for the entries it covers (those
    written before the ledger key was set, or under an earlier key). Its signature needs the key."""

    made_at = DateTimeField(default=utcnow)
    body = TextField()
