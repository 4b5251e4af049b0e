"""The data a load needs, made through the project's own services (as `make run`'s demo data is)."""

import contextlib
import datetime
import secrets

import ledger
from botapp.settings import ledger_key
from catalog.goods import create_goods, receive_stock
from community import activities, people, rules
from community.models import Community, Staff
from ledger.models import utcnow


@contextlib.contextmanager
def opened(url, secret=None):
    """The project's database handle bound to `url` for the setup, under the ledger key the app
    derives from its SECRET_KEY `secret` (counter codes are stored hashed with it); closed afterwards."""
    database = ledger.open_database(url, key=ledger_key("", secret) if secret else None)
    database.connect()
    try:
        yield database
    finally:
        database.close()


def password():
    """A fresh staff password (Argon2-hashed by the service like any other)."""
    return secrets.token_urlsafe(12)


def community(coordinator_password=None):
    """The default point rules, a district → street → community tree and one coordinator."""
    rules.install_default_rules()
    district = people.create_community("D1", "城区", "Old Town", level=Community.DISTRICT)
    street = people.create_community("ST1", "河街道", "River Street", level=Community.STREET, parent=district)
    north = people.create_community("N1", "北社区", "North", parent=street)
    boss = people.create_staff("bench-coordinator", coordinator_password or password(), Staff.COORDINATOR,
                               community=north)
    return north, boss


def phone(n):
    """The n-th bench phone number, in E.164 (a valid Chinese mobile number)."""
    return f"+86139{n:08d}"


def residents(place, count, *, first=0, telegram_from=None, language="zh_Hans"):
    """Register `count` residents with phones (and Telegram ids from `telegram_from`), in one transaction."""
    made = []
    with ledger.db.atomic():
        for i in range(first, first + count):
            made.append(people.register_resident(
                place, f"居民{i}", phone=phone(i), language=language,
                telegram_id=None if telegram_from is None else telegram_from + i - first,
            ))
    return made


def fund(place, members, amount):
    """Award each resident `amount` hundredths of a point from the community's issuer account."""
    with ledger.db.atomic():
        for resident in members:
            ledger.transfer(place.issuer_id, resident.account_id, amount, kind="award", actor="staff:bench",
                            memo="volunteering v1: bench", idempotency_key=f"bench:fund:{resident.id}")


def activity(boss, place, capacity):
    """An open activity starting in two days; return it (its SMS code is `activity.code`)."""
    starts = utcnow().replace(microsecond=0) + datetime.timedelta(days=2)
    return activities.create_activity(boss, place, title="Park clean-up", category="volunteering",
                                      starts_at=starts, ends_at=starts + datetime.timedelta(hours=2),
                                      capacity=capacity, place="Gate 3")


def goods(boss, place, price, stock):
    """Goods on the community's shelf with `stock` in store."""
    item = create_goods(boss, place, "肥皂", "Soap", price)
    receive_stock(boss, item, stock)
    return item
