"""Checkouts at the counter: redemptions and their lines."""

import datetime

from peewee import CharField, DateTimeField, ForeignKeyField, IntegerField, Model, TextField


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    def table(name):
        return type(name.title(), (Base,), {"Meta": type("Meta", (), {"table_name": name})})

    Resident, Community, Staff, Transfer, Goods = (
        table(n) for n in ("resident", "community", "staff", "transfer", "goods")
    )

    class Redemption(Base):
        resident = ForeignKeyField(Resident)
        community = ForeignKeyField(Community)
        clerk = ForeignKeyField(Staff)
        transfer = ForeignKeyField(Transfer, unique=True)
        total = IntegerField()
        status = CharField(max_length=10, default="done")
        void_reason = TextField(default="")
        checkout_key = CharField(max_length=80, unique=True)
        created_at = DateTimeField(default=datetime.datetime.utcnow)

    class RedemptionLine(Base):
        redemption = ForeignKeyField(Redemption)
        goods = ForeignKeyField(Goods)
        quantity = IntegerField()
        price = IntegerField()

    db.create_tables([Redemption, RedemptionLine])
