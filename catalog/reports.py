"""Reports for coordinators: points per week, community totals, top goods, exports, statements.

Functions take the communities in scope, naive UTC instants (`start` inclusive, `end` exclusive)
and, where weeks or local days matter, a zone; they return plain values, rows and models.
Issued points are awards posted in the period; a reversal of an award is counted separately, as a
negative amount in the period it was posted. Redeemed points are checkouts not voided.
"""

import datetime
from dataclasses import dataclass, field

from peewee import JOIN, fn

from community import cases, mediation
from community.audit import record
from community.models import (
    Activity,
    Case,
    Confirmation,
    Mediation,
    MediationSeat,
    Notice,
    PointRule,
    Resident,
    Signup,
    Staff,
)
from community.people import grid_labels, mask_phone
from community.rules import current_rule
from ledger import Entry, HistoryLine, Transfer, db
from ledger.models import from_local, to_local, utcnow

from .models import Goods, Redemption, RedemptionLine


def local_bounds(first_day, last_day, zone):
    """The naive UTC instants [start, end) covering the local days first_day to last_day."""
    return tuple(from_local(datetime.datetime.combine(day, datetime.time()), zone)
                 for day in (first_day, last_day + datetime.timedelta(days=1)))


def week_of(moment, zone):
    """The local Monday of the week holding the naive UTC `moment`."""
    day = to_local(moment, zone).date()
    return day - datetime.timedelta(days=day.weekday())


def _ids(communities):
    return [c.id for c in communities]


def _of_grid(grid):
    """The condition on Resident for one grid's residents (their grid label is its name or code);
    no condition without a grid."""
    return Resident.grid_label.in_(grid_labels(grid)) if grid is not None else True


def _signup_community():
    return fn.COALESCE(Activity.community, Resident.community)


def _awards(communities, start, end, reversals=False, grid=None):
    """(community id, posted at, category, amount) of awards, or of their reversals, to residents."""
    posting = Transfer.alias() if reversals else Transfer
    joined = (posting.reverses == Signup.transfer) if reversals else (posting.id == Signup.transfer)
    return (
        Signup.select(_signup_community(), posting.created_at, PointRule.category, Entry.amount)
        .join(Resident, on=(Signup.resident == Resident.id))
        .switch(Signup)
        .join(Activity, JOIN.LEFT_OUTER, on=(Signup.activity == Activity.id))
        .switch(Signup)
        .join(PointRule, on=(Signup.rule == PointRule.id))
        .join(posting, on=joined)
        .join(Entry, on=(Entry.transfer == posting.id) & (Entry.account == Resident.account))
        .where(
            Signup.transfer.is_null(False) & _signup_community().in_(_ids(communities))
            & (posting.created_at >= start) & (posting.created_at < end) & _of_grid(grid)
        )
        .tuples()
    )


def _redemptions(communities, start, end, grid=None):
    """(community id, made at, total) of checkouts not voided."""
    return (
        Redemption.select(Redemption.community, Redemption.created_at, Redemption.total)
        .join(Resident)
        .where(
            Redemption.community.in_(_ids(communities)) & (Redemption.status == Redemption.DONE)
            & (Redemption.created_at >= start) & (Redemption.created_at < end) & _of_grid(grid)
        )
        .tuples()
    )


@dataclass
class Week:
    """One local week (Monday first): points issued by category, reversed and redeemed."""

    starts: datetime.date
    issued: dict = field(default_factory=dict)
    reversed: int = 0
    redeemed: int = 0

    @property
    def issued_total(self):
        return sum(self.issued.values())


def points_by_week(communities, start, end, zone, grid=None):
    """Every week touching [start, end), oldest first, with the points issued, reversed and redeemed."""
    first, last = week_of(start, zone), week_of(end - datetime.timedelta(microseconds=1), zone)
    weeks = {}
    day = first
    while day <= last:
        weeks[day] = Week(day)
        day += datetime.timedelta(days=7)
    for _, posted, category, amount in _awards(communities, start, end, grid=grid):
        week = weeks[week_of(posted, zone)]
        week.issued[category] = week.issued.get(category, 0) + amount
    for _, posted, _, amount in _awards(communities, start, end, reversals=True, grid=grid):
        weeks[week_of(posted, zone)].reversed += amount
    for _, made, total in _redemptions(communities, start, end, grid=grid):
        weeks[week_of(made, zone)].redeemed += total
    return list(weeks.values())


@dataclass
class CommunityTotals:
    """A community's figures for a period (community None: the total of several)."""

    community: object = None
    issued: int = 0
    reversed: int = 0
    redeemed: int = 0
    active_residents: int = 0
    failed_notices: int = 0
    low_stock: int = 0


def community_totals(communities, start, end, low_stock, grid=None):
    """Per community and in total: points issued, reversed, redeemed, residents active,
    notices that failed, and goods on sale with at most `low_stock` left.

    A resident is active with a ledger entry or a sign-up in the period.
    """
    rows = {c.id: CommunityTotals(c) for c in communities}
    for community_id, _, _, amount in _awards(communities, start, end, grid=grid):
        rows[community_id].issued += amount
    for community_id, _, _, amount in _awards(communities, start, end, reversals=True, grid=grid):
        rows[community_id].reversed += amount
    for community_id, _, total in _redemptions(communities, start, end, grid=grid):
        rows[community_id].redeemed += total
    in_scope = Resident.community.in_(_ids(communities)) & _of_grid(grid)
    with_entries = (
        Resident.select(Resident.id, Resident.community)
        .join(Entry, on=(Entry.account == Resident.account))
        .join(Transfer)
        .where(in_scope & (Transfer.created_at >= start) & (Transfer.created_at < end))
        .distinct()
        .tuples()
    )
    with_signups = (
        Resident.select(Resident.id, Resident.community)
        .join(Signup, on=(Signup.resident == Resident.id))
        .where(in_scope & (Signup.created_at >= start) & (Signup.created_at < end))
        .distinct()
        .tuples()
    )
    for _, community_id in set(with_entries) | set(with_signups):
        rows[community_id].active_residents += 1
    failed = (
        Notice.select(Resident.community, fn.COUNT(Notice.id))
        .join(Resident)
        .where(in_scope & (Notice.status == Notice.FAILED) & (Notice.created_at >= start) & (Notice.created_at < end))
        .group_by(Resident.community)
        .tuples()
    )
    for community_id, count in failed:
        rows[community_id].failed_notices = count
    for goods in stock_levels(communities):
        if goods.stock <= low_stock:
            rows[goods.community_id].low_stock += 1
    total = CommunityTotals()
    for row in rows.values():
        for name in ("issued", "reversed", "redeemed", "active_residents", "failed_notices", "low_stock"):
            setattr(total, name, getattr(total, name) + getattr(row, name))
    return list(rows.values()), total


def top_goods(communities, start, end, limit=10, grid=None):
    """The goods redeemed most (by quantity, checkouts not voided): [(goods, quantity, points)]."""
    quantity = fn.SUM(RedemptionLine.quantity)
    points = fn.SUM(RedemptionLine.quantity * RedemptionLine.price)
    query = (
        Goods.select(Goods, quantity.alias("quantity"), points.alias("points"))
        .join(RedemptionLine)
        .join(Redemption)
        .join(Resident)
        .where(
            Redemption.community.in_(_ids(communities)) & (Redemption.status == Redemption.DONE)
            & (Redemption.created_at >= start) & (Redemption.created_at < end) & _of_grid(grid)
        )
        .group_by(Goods)
        .order_by(quantity.desc(), Goods.id)
        .limit(limit)
    )
    return [(goods, int(goods.quantity), int(goods.points)) for goods in query]


def stock_levels(communities):
    """Goods on sale in these communities, least stock first."""
    return list(
        Goods.select()
        .where(Goods.community.in_(_ids(communities)) & Goods.active)
        .order_by(Goods.stock, Goods.name_zh, Goods.id)
    )


# --- exports -------------------------------------------------------------------------------


def ledger_lines(communities, start, end, grid=None):
    """Entries on the accounts of these communities' residents, posted in [start, end), in order;
    an award's row names its rule (rule_zh, rule_en) and its deed or activity (deed)."""
    query = (
        Entry.select(
            Transfer.id.alias("transfer_id"), Transfer.created_at, Transfer.kind, Transfer.memo,
            Transfer.actor, Transfer.reverses.alias("reverses_id"), Entry.amount, Entry.balance_after,
            Resident.id.alias("resident_id"), Resident.display_name, Resident.phone, Resident.community,
            PointRule.name_zh.alias("rule_zh"), PointRule.name_en.alias("rule_en"),
            fn.COALESCE(Activity.title, Signup.note).alias("deed"),
        )
        .join(Transfer)
        .join(Signup, JOIN.LEFT_OUTER, on=(Signup.transfer == Transfer.id))  # an award's sign-up
        .join(PointRule, JOIN.LEFT_OUTER, on=(Signup.rule == PointRule.id))
        .switch(Signup)
        .join(Activity, JOIN.LEFT_OUTER, on=(Signup.activity == Activity.id))
        .switch(Entry)
        .join(Resident, on=(Resident.account == Entry.account))
        .where(
            Resident.community.in_(_ids(communities))
            & (Transfer.created_at >= start) & (Transfer.created_at < end) & _of_grid(grid)
        )
        .order_by(Transfer.created_at, Transfer.id, Entry.id)
        .dicts()
    )
    usernames = {f"staff:{i}": name for i, name in Staff.select(Staff.id, Staff.username).tuples()}
    for row in query.iterator():
        yield {**row, "phone": mask_phone(row["phone"]), "staff": usernames.get(row["actor"], row["actor"])}


def redemption_lines(communities, start, end, grid=None):
    """Each goods line of the checkouts made in [start, end), voided ones included, in order."""
    clerk = Staff.alias()
    query = (
        RedemptionLine.select(
            Redemption.id.alias("redemption_id"), Redemption.created_at, Redemption.status,
            Redemption.void_reason, Redemption.community, Resident.id.alias("resident_id"),
            Resident.display_name, Resident.phone, clerk.username.alias("clerk"), Goods.name_zh, Goods.name_en,
            RedemptionLine.quantity, RedemptionLine.price,
        )
        .join(Redemption)
        .join(Resident)
        .switch(Redemption)
        .join(clerk, on=(Redemption.clerk == clerk.id))
        .switch(RedemptionLine)
        .join(Goods)
        .where(
            Redemption.community.in_(_ids(communities))
            & (Redemption.created_at >= start) & (Redemption.created_at < end) & _of_grid(grid)
        )
        .order_by(Redemption.created_at, Redemption.id, RedemptionLine.id)
        .dicts()
    )
    for row in query.iterator():
        yield {**row, "phone": mask_phone(row["phone"]), "subtotal": row["quantity"] * row["price"]}


def confirmation_lines(communities, start, end, grid=None):
    """Each staff confirmation given in [start, end), in order.

    `award` is the points the sign-up earned, on the confirmation that posted them (only there,
    so that a column sum counts each award once).
    """
    query = (
        Confirmation.select(
            Confirmation.created_at, Signup.id.alias("signup_id"), Signup.state, Signup.note,
            fn.COALESCE(Activity.category, Signup.category).alias("category"), Activity.code.alias("activity"),
            Activity.title, _signup_community().alias("community"), Resident.id.alias("resident_id"),
            Resident.display_name, Resident.phone, Staff.id.alias("staff_id"), Staff.username,
            Transfer.actor, Entry.amount,
        )
        .join(Signup)
        .join(Resident, on=(Signup.resident == Resident.id))
        .switch(Signup)
        .join(Activity, JOIN.LEFT_OUTER, on=(Signup.activity == Activity.id))
        .switch(Signup)
        .join(Transfer, JOIN.LEFT_OUTER, on=(Signup.transfer == Transfer.id))
        .join(Entry, JOIN.LEFT_OUTER, on=(Entry.transfer == Transfer.id) & (Entry.account == Resident.account))
        .switch(Confirmation)
        .join(Staff)
        .where(
            _signup_community().in_(_ids(communities))
            & (Confirmation.created_at >= start) & (Confirmation.created_at < end) & _of_grid(grid)
        )
        .order_by(Confirmation.created_at, Confirmation.id)
        .dicts()
    )
    for row in query.iterator():
        posted_here = row["actor"] == f"staff:{row['staff_id']}"
        yield {**row, "phone": mask_phone(row["phone"]), "award": row["amount"] if posted_here else None}




def record_export(staff, what, communities, first_day, last_day):
    """Write to the audit log who exported what, for which communities and days."""
    detail = {"communities": [c.code for c in communities], "from": first_day, "to": last_day}
    with db.atomic():
        return record(staff, "report.export", what, detail,
                      community=communities[0] if len(communities) == 1 else None)


# --- passbook statement ----------------------------------------------------------------------


def what_for(line, language, reversed_word):
    """What a passbook line was for, in `language`, for residents and staff alike: the point
    rule's name and the deed or activity ("救援 救起落水儿童"), or the goods taken; a reversal is
    `reversed_word` (the transport's own word). The ledger memo ("rescue v1: …") is a fallback."""
    if line.kind == Transfer.AWARD:
        signup = Signup.get_or_none(Signup.transfer == line.transfer_id)
        if signup is not None and signup.rule is not None:
            title = signup.activity.title_for(language) if signup.activity_id else signup.note
            return f"{signup.rule.name(language)} {title}"
        case = Case.get_or_none(Case.transfer == line.transfer_id)
        if case is not None:  # a reporter's points for a verified fix
            return f"{cases.category(case.category, case.community_id).name(language)} #{case.id} {case.text}"
        seat = MediationSeat.get_or_none(MediationSeat.transfer == line.transfer_id)
        if seat is not None:  # a mediator's points for an agreement (a private one's dispute is not named)
            dispute = f"#{seat.mediation_id}" if seat.mediation.private else seat.mediation.summary
            return f"{current_rule(mediation.RULE).name(language)} {dispute}"
    elif line.kind == Transfer.REDEEM:
        redemption = Redemption.get_or_none(Redemption.transfer == line.transfer_id)
        if redemption is not None:
            return ", ".join(f"{item.goods.name(language)}×{item.quantity}" for item in redemption.lines)
    elif line.kind == Transfer.REVERSAL:
        return reversed_word
    return line.memo


def done_on(line):
    """When the work behind an award was done (its activity's start), or None."""
    if line.kind != Transfer.AWARD:
        return None
    signup = Signup.get_or_none(Signup.transfer == line.transfer_id)
    return signup.activity.starts_at if signup is not None and signup.activity_id else None


@dataclass(frozen=True)
class Statement:
    """A resident's passbook for a period: opening balance, the postings, closing balance."""

    opening: int
    lines: list
    closing: int
    total_in: int
    total_out: int


def statement(resident, start, end):
    """The resident's entries posted in [start, end), with the balances either side."""
    entries = (
        Entry.select(
            Entry.seq, Entry.transfer, Transfer.kind, Transfer.memo, Entry.amount, Entry.balance_after,
            Transfer.created_at,
        )
        .join(Transfer)
        .where(Entry.account == resident.account_id)
    )
    before = entries.where(Transfer.created_at < start).order_by(Entry.seq.desc()).limit(1).tuples().first()
    opening = before[5] if before else 0
    rows = entries.where((Transfer.created_at >= start) & (Transfer.created_at < end)).order_by(Entry.seq)
    lines = [HistoryLine(*row) for row in rows.tuples()]
    return Statement(
        opening=opening,
        lines=lines,
        closing=lines[-1].balance_after if lines else opening,
        total_in=sum(line.amount for line in lines if line.amount > 0),
        total_out=-sum(line.amount for line in lines if line.amount < 0),
    )


# --- cases (事事有回音) -------------------------------------------------------------------------


@dataclass
class CaseFigures:
    """One category's cases in a period: received, closed, closed within their limits, and closed
    at the first fix (the reporter's 1 without a 2 before it)."""

    category: str
    received: int = 0
    closed: int = 0
    on_time: int = 0
    first_time: int = 0


def _cases_in(communities, grid=None):
    query = Case.select(Case, Resident).join(Resident, on=(Case.reporter == Resident.id)).where(
        Case.community.in_(_ids(communities)))
    return query.where(_of_grid(grid)) if grid is not None else query


def _within_limits(case, kind):
    return case.closed_at <= case.created_at + kind.accept + kind.handle + kind.verify


def case_summary(communities, start, end, grid=None):
    """Per category and in all: cases received and closed in [start, end), on time, at the first fix."""
    kind = cases.kinds_for(communities)
    by_category = {code: CaseFigures(code) for code in cases.names(communities, "zh_Hans")}
    for case in _cases_in(communities, grid).where(Case.created_at >= start, Case.created_at < end):
        by_category.setdefault(case.category, CaseFigures(case.category)).received += 1
    closed = _cases_in(communities, grid).where(Case.state == Case.CLOSED, Case.closed_at >= start,
                                                Case.closed_at < end)
    for case in closed:
        figures = by_category.setdefault(case.category, CaseFigures(case.category))
        figures.closed += 1
        figures.on_time += _within_limits(case, kind(case))
        figures.first_time += case.reopened == 0
    rows = list(by_category.values())
    total = CaseFigures("", *(sum(getattr(r, f) for r in rows) for f in ("received", "closed", "on_time",
                                                                        "first_time")))
    return rows, total


def case_lines(communities, start, end, grid=None):
    """The cases received in [start, end), as rows for a spreadsheet."""
    kind = cases.kinds_for(communities)
    for case in _cases_in(communities, grid).where(Case.created_at >= start, Case.created_at < end).order_by(Case.id):
        yield {"case": case.id, "created_at": case.created_at, "community": case.community_id,
               "category": case.category, "text": case.text, "place": case.place, "state": case.state,
               "display_name": case.reporter.display_name, "phone": mask_phone(case.reporter.phone),
               "closed_at": case.closed_at, "on_time": case.state == Case.CLOSED and _within_limits(case, kind(case)),
               "reopened": case.reopened, "points": case.points, "duplicate_of": case.duplicate_of_id}


EXPORTS = {"transfers": ledger_lines, "redemptions": redemption_lines, "confirmations": confirmation_lines,
           "cases": case_lines}


def mediation_summary(communities, start, end):
    """Mediations opened and closed in [start, end), the closed ones that ended in an agreement,
    and those still open past their 30 days."""
    ids = _ids(communities)
    closed = Mediation.select().where(Mediation.community.in_(ids), Mediation.state == Mediation.CLOSED,
                                      Mediation.closed_at >= start, Mediation.closed_at < end)
    return {
        "opened": Mediation.select().where(Mediation.community.in_(ids), Mediation.created_at >= start,
                                           Mediation.created_at < end).count(),
        "closed": closed.count(),
        "agreed": closed.where(Mediation.outcome.in_((Mediation.WRITTEN, Mediation.ORAL))).count(),
        "late": Mediation.select().where(Mediation.community.in_(ids), Mediation.state == Mediation.OPEN,
                                         Mediation.due_at < utcnow()).count(),
    }
