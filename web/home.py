"""The staff home page: a coordinator's day, a clerk's counter."""

import datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, render_template
from flask_babel import lazy_gettext as _l
from flask_login import login_required

from catalog.models import Goods
from catalog.reports import community_totals, local_bounds, stock_levels
from community import Community, PointRule, Resident, Staff
from community.activities import activities_between
from community.awards import awaiting_second_confirmation, pending_for
from community.notices import failed_notices
from community.people import visible_communities
from ledger.models import to_local, utcnow

from .auth import current_staff
from .goods import LOW_STOCK

bp = Blueprint("home", __name__)


@bp.get("/")
@login_required
def index():
    """Where a staff member starts: for coordinators, their day — today's and this week's
    activities, what waits for a decision, low stock, undelivered notices, the week's points."""
    staff = current_staff()
    if staff.role in (Staff.CLERK, Staff.GRID_WORKER):
        return render_template("home.html")
    zone = ZoneInfo(current_app.config["TIMEZONE"])
    communities = visible_communities(staff)
    today = to_local(utcnow(), zone).date()
    monday = today - datetime.timedelta(days=today.weekday())
    day_start, day_end = local_bounds(today, today, zone)
    week_start, week_end = local_bounds(monday, monday + datetime.timedelta(days=6), zone)
    coming = activities_between(communities, day_start, week_end)
    pending = pending_for(communities, limit=20)
    _, week = community_totals(communities, week_start, week_end, LOW_STOCK)
    return render_template(
        "home.html", first_steps=first_steps() if staff.role == Staff.ADMIN else None,
        today=[a for a in coming if a.starts_at < day_end],
        later=[a for a in coming if a.starts_at >= day_end], pending=pending,
        progress={s.id: awaiting_second_confirmation(s) for s in pending},
        low=[g for g in stock_levels(communities) if g.stock <= LOW_STOCK], failed=failed_notices(communities),
        week=week,
    )


def first_steps():
    """An admin's first day, step by step, until each is done: (what, where, done)."""
    steps = [
        (_l("Set up the district: its streets, communities and grids"), "places.index",
         Community.select().where(Community.level == Community.COMMUNITY).exists()),
        (_l("Add the staff: coordinators and counter clerks"), "staff.index",
         Staff.select().where(Staff.role != Staff.ADMIN).exists()),
        (_l("Check what each kind of work is worth"), "admin.rules", PointRule.select().exists()),
        (_l("Register or import the residents"), "residents.bulk_import", Resident.select().exists()),
        (_l("Put goods on the points supermarket's shelf"), "goods.new", Goods.select().exists()),
    ]
    return None if all(done for _what, _where, done in steps) else steps
