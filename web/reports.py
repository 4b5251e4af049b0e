"""Reports for coordinators and admins: the dashboard, CSV exports and the printable passbook."""

import csv
import datetime
import io
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _

import ledger
from catalog import reports
from catalog.models import Redemption
from community import Case, Signup, Staff, cases, places
from community.people import can_act, get_resident, mask_phone, visible_communities
from community.rules import current_rules
from ledger import Transfer
from ledger.models import to_local

from .auth import current_staff, roles_required
from .goods import LOW_STOCK

bp = Blueprint("reports", __name__, url_prefix="/reports")
COORDINATOR = Staff.COORDINATOR
DEFAULT_WEEKS = 12
STATEMENT_MONTHS = 3
MAX_DASHBOARD_DAYS = 371
FIRST_DAY, LAST_DAY = datetime.date(2000, 1, 1), datetime.date(2099, 12, 31)
PALETTE = ("#2f6fb0", "#4aa36c", "#d08a2e", "#8a5cb8", "#3aa3a3", "#b5497a")
REDEEMED_COLOUR = "#6b7280"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class BadFilter(Exception):
    """A filter on a report page that cannot be used; the message says why."""


def _zone():
    return ZoneInfo(current_app.config["TIMEZONE"])


def _language():
    return str(get_locale())


def _today():
    return datetime.datetime.now(_zone()).date()


def _default_period():
    today = _today()
    return today - datetime.timedelta(days=today.weekday(), weeks=DEFAULT_WEEKS - 1), today


def _day(name, default):
    text = request.args.get(name, "").strip()
    if not text:
        return default
    try:
        day = datetime.date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        day = None
    if day is None or not FIRST_DAY <= day <= LAST_DAY:
        raise BadFilter(_("Give dates as YYYY-MM-DD, between 2000 and 2099."))
    return day


def _period(default, max_days=None):
    """The local days from and to asked for in the query string."""
    first, last = _day("from", default[0]), _day("to", default[1])
    if first > last:
        raise BadFilter(_("The start date is after the end date."))
    if max_days is not None and (last - first).days >= max_days:
        raise BadFilter(_("Choose a period of at most a year."))
    return first, last


def _scope():
    """The scope asked for ("all", a community code, or a grid code) and its communities; 403
    when not visible."""
    visible = visible_communities(current_staff())
    code = request.args.get("community", "all").strip() or "all"
    if code == "all":
        return code, visible
    chosen = [c for c in visible if c.code == code]
    if not chosen:
        grid = _grid(code, visible)
        if grid is None:
            abort(403)
        chosen = [grid.parent]
    return code, chosen


def _grid(code, visible=None):
    """The grid a scope code names, if it is one of the visible communities' grids."""
    visible = visible if visible is not None else visible_communities(current_staff())
    return next((g for g in places.grids_of(visible) if g.code == code), None)


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str


def _chart(weeks, categories, names, height=220, bar=22, gap=18, margin=18):
    """Bars for an inline SVG: per week, issued points stacked by category beside redeemed points."""
    top = max([w.issued_total for w in weeks] + [w.redeemed for w in weeks] + [1])
    base = margin + height
    bars, labels, x = [], [], gap
    for week in weeks:
        day = week.starts.isoformat()
        y = base
        for index, category in enumerate(categories):
            amount = week.issued.get(category, 0)
            if amount > 0:
                size = amount * height / top
                y -= size
                bars.append(Bar(x, y, bar, size, PALETTE[index % len(PALETTE)],
                                f"{day} {names[category]}: {ledger.format_amount(amount)}"))
        if week.redeemed > 0:
            size = week.redeemed * height / top
            bars.append(Bar(x + bar, base - size, bar, size, REDEEMED_COLOUR,
                            f"{day} {_('Redeemed')}: {ledger.format_amount(week.redeemed)}"))
        labels.append((x + bar, week.starts.strftime("%m-%d")))
        x += 2 * bar + gap
    return {"width": x, "base": base, "height": base + 24, "bars": bars, "labels": labels, "top": top}


def _case_chart(rows, kinds, width=320, bar=12, gap=10, label=84):
    """Bars for an inline SVG: per kind of case, received above closed."""
    top = max([r.received for r in rows] + [r.closed for r in rows] + [1])
    bars, labels, y = [], [], gap
    for row in rows:
        labels.append((y + bar + 4, kinds[row.category]))
        for value, colour, what in ((row.received, PALETTE[0], _("Received")), (row.closed, REDEEMED_COLOUR,
                                                                                 _("Closed"))):
            if value:
                bars.append(Bar(label, y, value * (width - label - 30) / top, bar - 1, colour,
                                f"{kinds[row.category]} {what}: {value}"))
            y += bar
        y += gap
    return {"width": width, "height": y, "bars": bars, "labels": labels}


@bp.get("/")
@roles_required(COORDINATOR)
def dashboard():
    """Points issued and redeemed per week, community figures, goods and stock for a scope and period."""
    try:
        first, last = _period(_default_period(), MAX_DASHBOARD_DAYS)
    except BadFilter as exc:
        flash(str(exc), "error")
        return redirect(url_for(".dashboard", community=request.args.get("community", "all")))
    code, communities = _scope()
    grid = _grid(code)
    start, end = reports.local_bounds(first, last, _zone())
    weeks = reports.points_by_week(communities, start, end, _zone(), grid=grid)
    language = _language()
    names = {r.category: r.name(language) for r in current_rules()}
    used = {category for week in weeks for category in week.issued}
    categories = sorted(set(names) | used)
    names.update({c: c for c in used - set(names)})
    rows, total = reports.community_totals(communities, start, end, LOW_STOCK, grid=grid)
    case_rows, case_total = reports.case_summary(communities, start, end, grid=grid)
    case_kinds = cases.names(communities, language)
    visible = visible_communities(current_staff())
    return render_template(
        "reports/dashboard.html", scope=code, visible=visible, grids=places.grids_of(visible),
        first=first, last=last, weeks=weeks, categories=categories, names=names,
        palette=PALETTE, redeemed_colour=REDEEMED_COLOUR, chart=_chart(weeks, categories, names),
        rows=rows, total=total, top=reports.top_goods(communities, start, end, grid=grid),
        stock=reports.stock_levels(communities), low=LOW_STOCK, places={c.id: c.name(language) for c in communities},
        case_rows=case_rows, case_total=case_total,
        case_kinds=case_kinds, case_chart=_case_chart(case_rows, case_kinds),
        mediations=reports.mediation_summary(communities, start, end),
    )


def _guard(value):
    """Text for a spreadsheet cell that will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _columns(what, communities):
    language, zone = _language(), _zone()
    places = {c.id: c.name(language) for c in communities}
    kinds = {Transfer.AWARD: _("award"), Transfer.REDEEM: _("redemption"), Transfer.REVERSAL: _("reversal"),
             Transfer.ADJUSTMENT: _("adjustment")}
    states = {Signup.SIGNED_UP: _("signed up"), Signup.CHECKED_IN: _("checked in"), Signup.CONFIRMED: _("confirmed"),
              Signup.REJECTED: _("rejected"), Signup.NO_SHOW: _("no-show"), Signup.REVERSED: _("reversed")}
    categories = {r.category: r.name(language) for r in current_rules()}

    def text(key):
        return lambda row: _guard(row[key])

    def label(names, key):
        return lambda row: _guard(names.get(row[key], row[key]))

    def amount(key):
        return lambda row: "" if row[key] is None else ledger.format_amount(row[key])

    def plain(key):
        return lambda row: "" if row[key] is None else row[key]

    def posting(row):  # an award by its rule's name and deed, never "rescue v1: …"
        rule = row["rule_en"] if language == "en" else row["rule_zh"]
        return _guard(f"{rule} {row['deed']}" if rule else row["memo"])

    def when(row):
        return to_local(row["created_at"], zone).strftime("%Y-%m-%d %H:%M:%S")

    def place(row):
        return _guard(places.get(row["community"], ""))

    people = [(_("Resident"), plain("resident_id")), (_("Name"), text("display_name")),
              (_("Phone number"), text("phone"))]
    if what == "cases":
        kinds_of_case = cases.names(communities, language)
        case_states = {Case.RECEIVED: _("waiting to be taken on"), Case.ACCEPTED: _("being dealt with"),
                       Case.HANDLED: _("waiting for the reporter"), Case.CLOSED: _("closed"),
                       Case.REFUSED: _("not taken up"), Case.MERGED: _("merged")}
        return [
            (_("No."), plain("case")), (_("Time"), when), (_("Community"), place),
            (_("Kind"), label(kinds_of_case, "category")), (_("What is wrong"), text("text")),
            (_("Where"), text("place")), (_("State"), label(case_states, "state")),
            (_("Name"), text("display_name")), (_("Phone number"), text("phone")),
            (_("Closed"), lambda row: to_local(row["closed_at"], zone).strftime("%Y-%m-%d %H:%M:%S")
             if row["closed_at"] else ""),
            (_("On time"), lambda row: _("yes") if row["on_time"] else ""),
            (_("Opened again"), plain("reopened")), (_("Points awarded"), amount("points")),
            (_("Same matter as"), plain("duplicate_of")),
        ]
    if what == "transfers":
        return [
            (_("Time"), when), (_("Transfer"), plain("transfer_id")), (_("Kind"), label(kinds, "kind")),
            (_("Community"), place), *people, (_("Points"), amount("amount")),
            (_("Balance after"), amount("balance_after")), (_("For"), posting), (_("Staff"), text("staff")),
            (_("Reverses transfer"), plain("reverses_id")),
        ]
    if what == "redemptions":
        voided = {Redemption.VOIDED: _("yes"), Redemption.DONE: ""}
        return [
            (_("Time"), when), (_("Checkout"), plain("redemption_id")), (_("Community"), place), *people,
            (_("Clerk"), text("clerk")), (_("Goods"), text("name_en" if language == "en" else "name_zh")),
            (_("Quantity"), plain("quantity")), (_("Price"), amount("price")), (_("Points"), amount("subtotal")),
            (_("Voided"), label(voided, "status")), (_("Reason"), text("void_reason")),
        ]
    return [
        (_("Time"), when), (_("Sign-up"), plain("signup_id")), (_("Community"), place),
        (_("Activity"), text("activity")), (_("Title"), lambda row: _guard(row["title"] or row["note"])),
        (_("Category"), label(categories, "category")), *people, (_("Confirmed by"), text("username")),
        (_("State"), label(states, "state")), (_("Points awarded"), amount("award")),
    ]


def _csv(columns, rows):
    """Stream rows as CSV in UTF-8 with a byte order mark, so that Excel reads Chinese."""
    header = [title for title, _cell in columns]

    def generate():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        buffer.write("\ufeff")
        writer.writerow(header)
        for row in rows:
            writer.writerow([cell(row) for _title, cell in columns])
            if buffer.tell() > 8192:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return generate()


@bp.get("/export/<what>.csv")
@roles_required(COORDINATOR)
def export(what):
    """Download ledger transfers, redemptions or confirmations for a period and scope as CSV."""
    if what not in reports.EXPORTS:
        abort(404)
    try:
        first, last = _period(_default_period())
    except BadFilter as exc:
        flash(str(exc), "error")
        return redirect(url_for(".dashboard", community=request.args.get("community", "all")))
    code, communities = _scope()
    start, end = reports.local_bounds(first, last, _zone())
    reports.record_export(current_staff(), what, communities, first, last)
    rows = reports.EXPORTS[what](communities, start, end, grid=_grid(code))
    filename = f"linli-{what}-{code}-{first.isoformat()}-{last.isoformat()}.csv"
    return Response(
        stream_with_context(_csv(_columns(what, communities), rows)),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.get("/statement/<int:resident_id>")
@roles_required(COORDINATOR)
def statement(resident_id):
    """A resident's printable passbook statement for a period."""
    resident = get_resident(resident_id)
    if not can_act(current_staff(), resident.community, COORDINATOR):
        abort(403)
    today = _today()
    months = today.year * 12 + today.month - 1 - (STATEMENT_MONTHS - 1)
    default = (datetime.date(months // 12, months % 12 + 1, 1), today)
    try:
        first, last = _period(default)
    except BadFilter as exc:
        flash(str(exc), "error")
        return redirect(url_for(".statement", resident_id=resident.id))
    start, end = reports.local_bounds(first, last, _zone())
    account = ledger.Account.get_by_id(resident.account_id)
    return render_template(
        "reports/statement.html", resident=resident, phone=mask_phone(resident.phone),
        first=first, last=last, statement=reports.statement(resident, start, end),
        digest=f"{account.version}-{account.head_hash[:16]}",
    )
