"""The points supermarket: goods, stock movements, one-time counter codes."""

import datetime

from peewee import BooleanField, CharField, Check, DateTimeField, ForeignKeyField, IntegerField, Model, TextField

now = datetime.datetime.utcnow


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Community(Base):
        class Meta:
            table_name = "community"

    class Resident(Base):
        class Meta:
            table_name = "resident"

    class Staff(Base):
        class Meta:
            table_name = "staff"

    class Goods(Base):
        community = ForeignKeyField(Community)
        name_zh = CharField(max_length=60)
        name_en = CharField(max_length=60)
        price = IntegerField()
        # The stock on hand can never go below zero, whatever writes it.
        stock = IntegerField(default=0, constraints=[Check("stock >= 0")])
        limit_quantity = IntegerField(null=True)
        limit_period = CharField(max_length=10, null=True)
        active = BooleanField(default=True)
        created_at = DateTimeField(default=now)

    class StockMovement(Base):
        goods = ForeignKeyField(Goods)
        kind = CharField(max_length=12)
        quantity = IntegerField()
        reason = TextField(default="")
        staff = ForeignKeyField(Staff, null=True)
        created_at = DateTimeField(default=now)

    class CounterCode(Base):
        code = CharField(max_length=16)
        kind = CharField(max_length=8)
        resident = ForeignKeyField(Resident)
        created_at = DateTimeField(default=now)
        expires_at = DateTimeField()
        used_at = DateTimeField(null=True)
        replaced_at = DateTimeField(null=True)
        failed_attempts = IntegerField(default=0)

        class Meta:
            indexes = ((("code", "kind"), False),)

    db.create_tables([Goods, StockMovement, CounterCode])
