"""The staff home page."""

from flask import Blueprint, render_template
from flask_login import login_required

from community import Staff
from community.awards import pending_for
from community.notices import failed_notices
from community.people import visible_communities

from .auth import current_staff

bp = Blueprint("home", __name__)


@bp.get("/")
@login_required
def index():
    """Where a staff member starts: what needs doing in their communities."""
    staff = current_staff()
    if staff.role == Staff.CLERK:
        return render_template("home.html", pending=[], failed=[])
    communities = visible_communities(staff)
    return render_template("home.html", pending=pending_for(communities, limit=20),
                           failed=failed_notices(communities))
