"""Point rules: what each category of community work is worth, versioned."""

import re

from peewee import IntegrityError, fn
from pypinyin import lazy_pinyin

import ledger
from ledger import db

from .audit import record
from .errors import InvalidInput, UnknownCategory
from .models import PointRule, Staff
from .people import authorize

DEFAULT_RULES = (
    # category, points (hundredths), confirmations required, Chinese name, English name
    ("rescue", 300, 2, "救援", "Rescue"),
    ("mediation", 150, 1, "调解纠纷", "Dispute mediation"),
    ("volunteering", 100, 1, "志愿服务", "Volunteering"),
)


def install_default_rules():
    """Create version 1 of the default rules where a category has none yet."""
    for category, points, confirmations, name_zh, name_en in DEFAULT_RULES:
        if current_rule_or_none(category) is None:
            try:
                with db.atomic():
                    PointRule.create(
                        category=category, version=1, points=points,
                        confirmations_required=confirmations, name_zh=name_zh, name_en=name_en,
                    )
            except IntegrityError:
                pass  # another process installed it first


def current_rule_or_none(category):
    """Return the newest version of a category's rule, or None."""
    return (
        PointRule.select()
        .where(PointRule.category == category)
        .order_by(PointRule.version.desc())
        .first()
    )


def current_rule(category):
    """Return the newest version of a category's rule, or raise UnknownCategory."""
    rule = current_rule_or_none(category)
    if rule is None:
        raise UnknownCategory(category=category)
    return rule


def current_rules():
    """Return the newest version of every category's rule, by category."""
    newest = PointRule.select(PointRule.category, fn.MAX(PointRule.version).alias("v")).group_by(
        PointRule.category
    )
    rules = PointRule.select().join(
        newest, on=(PointRule.category == newest.c.category) & (PointRule.version == newest.c.v)
    )
    return sorted(rules, key=lambda r: r.category)


def rule_history(category):
    """Return every version of a category's rule, newest first."""
    return list(
        PointRule.select().where(PointRule.category == category).order_by(PointRule.version.desc())
    )


def new_category_key(name_zh, name_en=None):
    """A key for a new category, made from its names (清洁 → qingjie) so nobody types one."""
    words = name_en if name_en and name_en.isascii() else " ".join(lazy_pinyin(name_zh or ""))
    base = re.sub(r"[^a-z0-9]+", "_", words.lower()).strip("_")[:24] or "category"
    key, n = base, 1
    while current_rule_or_none(key) is not None:
        n += 1
        key = f"{base}_{n}"
    return key


def set_rule(staff, category, points, confirmations_required, name_zh=None, name_en=None):
    """Add a new version of a rule (admins only); later confirmations use it, earlier ones keep theirs.
    Without a category this adds a new one, named in Chinese (English optional), its key made up."""
    authorize(staff, None, Staff.ADMIN)
    ledger.check_amount(points)
    if confirmations_required not in (1, 2):
        raise InvalidInput("a rule needs one or two confirmations")
    name_zh, name_en = (name_zh or "").strip()[:40], (name_en or "").strip()[:40]
    category = (category or "").strip().lower()
    if not category:
        if not name_zh:
            raise InvalidInput("a new category needs a Chinese name")
        category = new_category_key(name_zh, name_en)
    if not category.isascii() or not category.replace("_", "").isalnum() or len(category) > 30:
        raise InvalidInput("a category is a short latin word, such as rescue")
    previous = current_rule_or_none(category)
    if previous is None and not name_zh:
        raise InvalidInput("a new category needs a Chinese name")
    for _ in range(5):
        previous = current_rule_or_none(category)
        try:
            with db.atomic():
                rule = PointRule.create(
                    category=category,
                    version=(previous.version + 1) if previous else 1,
                    points=points,
                    confirmations_required=confirmations_required,
                    name_zh=name_zh or previous.name_zh,
                    name_en=name_en or (previous.name_en if previous else ""),
                    created_by=staff,
                )
                record(staff, "rule.set", f"rule:{category}", {"version": rule.version, "points": points})
                return rule
        except IntegrityError:
            continue  # a concurrent edit took that version number; build on it
    raise InvalidInput("the rule is being edited by someone else; try again")
