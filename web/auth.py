"""Staff login (Flask-Login) and the role check every staff route carries."""

import functools
import time
from urllib.parse import unquote, urlsplit

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user

from community import Staff
from community.errors import BadCredentials, TooManyLogins
from community.logins import log_in
from community.staffing import end_sessions, logged_in

from .forms import LoginForm

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.session_protection = "strong"


class StaffUser(UserMixin):
    """The logged-in staff member, as Flask-Login sees them."""

    def __init__(self, staff):
        self.staff = staff

    def get_id(self):
        # The session names the staff member and their session counter: a logout, a reset password
        # or a disabled account bumps the counter, and every cookie issued before stops working.
        return f"{self.staff.id}:{self.staff.sessions}"

    @property
    def is_active(self):
        return self.staff.active


@login_manager.user_loader
def load_user(user_id):
    staff_id, _, sessions = (user_id or "").partition(":")
    if not (staff_id.isdigit() and sessions.isdigit()):
        return None
    staff = Staff.by_id(int(staff_id))
    if staff is None or not staff.active or staff.sessions != int(sessions):
        return None
    return StaffUser(staff)


#: Blueprints only machines call (the SMS providers' webhooks): no session, nobody logs in, so
#: the login hooks are skipped for them.
WEBHOOKS = frozenset({"sms"})

#: A session ends after this long without a request, and after this long in any case.
IDLE, ABSOLUTE = 2 * 3600, 12 * 3600


@bp.before_app_request
def end_old_sessions():
    """Log out a session left idle (a shared office computer) or older than a working day."""
    if request.blueprint in WEBHOOKS or not current_user.is_authenticated:
        return None
    now = int(time.time())
    if now - session.get("seen", 0) > IDLE or now - session.get("since", 0) > ABSOLUTE:
        logout_user()
        session.clear()
        flash(_("Your session has ended; please log in again."), "warning")
        return redirect(url_for("auth.login", next=request.full_path))
    if now - session.get("seen", 0) > 60:  # written at most once a minute
        session["seen"] = now
    return None


@login_manager.unauthorized_handler
def unauthorized():
    flash(_("Please log in."), "warning")
    return redirect(url_for("auth.login", next=request.full_path))


def roles_required(*roles):
    """Let only logged-in staff with one of `roles` (admins always) into the view; 403 otherwise."""

    def decorate(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            staff = current_user.staff
            if staff.role != Staff.ADMIN and staff.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorate


def current_staff():
    """The logged-in staff model."""
    return current_user.staff


def safe_next(target, fallback="home.index"):
    """A redirect target that stays on this site: a path, never another host however it is spelt.

    Browsers drop tabs and newlines from URLs and read backslashes as slashes, so `/\\t/evil` and
    `/\\\\evil` are `//evil`: the check is made on what a browser would follow, and a target with
    any control character is refused outright (no 500 either)."""
    target = target or ""
    for spelling in (target, unquote(target)):  # as sent, and as a browser would decode it
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in spelling) or "\\" in spelling:
            return url_for(fallback)
        parts = urlsplit(spelling)
        if parts.scheme or parts.netloc or not spelling.startswith("/") or spelling.startswith("//"):
            return url_for(fallback)
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Log a staff member in; after too many failures the username or address waits (community.logins)."""
    form = LoginForm()
    if form.validate_on_submit():
        try:
            staff = log_in(form.username.data, form.password.data, request.remote_addr)
        except TooManyLogins as exc:
            flash(ngettext("Too many failed logins; try again in %(num)d minute.",
                           "Too many failed logins; try again in %(num)d minutes.", exc.minutes), "error")
            return render_template("login.html", form=form), 429, {"Retry-After": str(exc.minutes * 60)}
        except BadCredentials:
            flash(_("Wrong username or password."), "error")
        else:
            logged_in(staff)
            language = session.get("lang")
            session.clear()  # a new session (and CSRF token) for the logged-in staff member
            if language:
                session["lang"] = language
            login_user(StaffUser(staff))
            session["since"] = session["seen"] = int(time.time())
            if staff.must_change_password:
                return redirect(url_for("staff.own_password"))
            return redirect(safe_next(request.args.get("next")))
    return render_template("login.html", form=form)


@bp.post("/logout")
def logout():
    """Log out: this session and any copy of its cookie end."""
    if current_user.is_authenticated:
        end_sessions(current_user.staff)
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))
