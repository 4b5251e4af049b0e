"""The staff home page."""

from flask import Blueprint, render_template
from flask_login import login_required

from community import Staff
from community.awards import pending_for
from community.people import visible_communities

from .auth import current_staff

bp = Blueprint("home", __name__)


@bp.get("/")
@login_required
def index():
    """Where a staff member starts: what needs doing in their communities."""
    staff = current_staff()
    pending = [] if staff.role == Staff.CLERK else pending_for(visible_communities(staff), limit=20)
    return render_template("home.html", pending=pending)
