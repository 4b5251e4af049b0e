"""Member cards, and at most one live counter code of each kind per resident."""

import datetime

from peewee import CharField, DateTimeField, ForeignKeyField, Model


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    def table(name):
        return type(name.title(), (Base,), {"Meta": type("Meta", (), {"table_name": name})})

    Resident, Staff = table("resident"), table("staff")

    class MemberCard(Base):
        code = CharField(max_length=16, unique=True)
        resident = ForeignKeyField(Resident)
        issued_by = ForeignKeyField(Staff, null=True)
        issued_at = DateTimeField(default=datetime.datetime.utcnow)
        revoked_at = DateTimeField(null=True)

    db.create_tables([MemberCard])
    # Two requests at once (two scans of a card, CODE sent twice) must not leave two live codes.
    live = "used_at IS NULL AND replaced_at IS NULL"
    db.execute_sql(
        f"UPDATE counter_code SET replaced_at = created_at WHERE {live} AND id NOT IN "
        f"(SELECT MAX(id) FROM counter_code WHERE {live} GROUP BY resident_id, kind)"
    )
    db.execute_sql("CREATE UNIQUE INDEX member_card_live ON member_card (resident_id) WHERE revoked_at IS NULL")
    db.execute_sql(f"CREATE UNIQUE INDEX counter_code_live ON counter_code (resident_id, kind) WHERE {live}")
