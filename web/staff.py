"""Staff accounts: the admin's list (create, disable, re-enable, reset a password, change a role)
and everyone's own password."""

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user

from community import Community, CommunityError, Staff, places, staffing
from community.staffing import check_password

from .auth import WEBHOOKS, StaffUser, current_staff, roles_required
from .forms import ActionForm, OwnPasswordForm, RoleForm, StaffForm, choices
from .i18n import ROLE_NAMES, error_message, select_locale
from .util import once

bp = Blueprint("staff", __name__, url_prefix="/staff")

#: What a staff member with a one-time password may still reach before choosing their own.
OPEN_WHILE_CHANGING = {"staff.own_password", "auth.logout", "auth.login", "static", "i18n.switch_language",
                       "health.healthz"}


@bp.before_app_request
def choose_own_password_first():
    if (request.blueprint not in WEBHOOKS and current_user.is_authenticated and current_user.staff.must_change_password
            and request.endpoint not in OPEN_WHILE_CHANGING):
        flash(_("Please choose your own password first."), "warning")
        return redirect(url_for("staff.own_password"))
    return None


def _fill(form):
    form.role.choices = choices([(role, ROLE_NAMES[role]) for role in Staff.ROLES])
    language = select_locale()
    form.community.choices = [("", "—")] + [
        (p.code, p.name(language) if p.level == "community" else f"{p.name(language)}（{p.parent.name(language)}）")
        for _depth, p in places.tree() if p.level in ("community", "grid", "unit") and not p.archived]


@bp.route("/", methods=["GET", "POST"])
@roles_required(Staff.ADMIN)
def index():
    """Every staff account, and a form to add one (its one-time password is shown once)."""
    form = StaffForm()
    _fill(form)
    shown_password = None
    if form.validate_on_submit():
        community = Community.get_or_none(Community.code == form.community.data) if form.community.data else None
        made = {}

        def add():
            member, made["password"] = staffing.add_staff(current_staff(), form.username.data, form.role.data,
                                                          community, form.display_name.data)
            return member

        try:
            done = once("staff.create", add)
        except CommunityError as exc:
            flash(error_message(exc), "error")
        else:
            if done.repeated:
                flash(_("If its password was lost, reset it below."), "info")
            else:
                shown_password = (done.made.username, made["password"])
                form = _blank()
    return render_template("staff/index.html", staff=staffing.staff_list(), form=form, action=ActionForm(),
                           role_names=ROLE_NAMES, shown_password=shown_password, roles=_role_forms())


def _role_forms():
    forms = {}
    for member in staffing.staff_list():
        form = RoleForm(prefix=f"s{member.id}", formdata=None)
        _fill(form)
        form.role.data = member.role
        form.community.data = member.community.code if member.community_id else ""
        forms[member.id] = form
    return forms


def _member(staff_id):
    member = Staff.by_id(staff_id)
    if member is None:
        abort(404)
    return member


@bp.post("/<int:staff_id>/active")
@roles_required(Staff.ADMIN)
def set_active(staff_id):
    """Disable a leaver or enable them again."""
    member = _member(staff_id)
    if ActionForm().validate_on_submit():
        wanted = request.form.get("active") == "1"
        try:
            staffing.set_active(current_staff(), member, wanted)
        except CommunityError as exc:
            flash(error_message(exc), "error")
        else:
            flash(_("%(name)s can log in again.", name=member.username) if wanted else
                  _("%(name)s is disabled; their open sessions have ended.", name=member.username), "success")
    return redirect(url_for(".index"))


@bp.post("/<int:staff_id>/password")
@roles_required(Staff.ADMIN)
def reset_password(staff_id):
    """Give a staff member a one-time password, shown once here."""
    member = _member(staff_id)
    if not ActionForm().validate_on_submit():
        return redirect(url_for(".index"))
    password = staffing.reset_password(current_staff(), member)
    return render_template("staff/index.html", staff=staffing.staff_list(), form=_blank(), action=ActionForm(),
                           role_names=ROLE_NAMES, shown_password=(member.username, password), roles=_role_forms())


def _blank():
    form = StaffForm(formdata=None)
    _fill(form)
    return form


@bp.post("/<int:staff_id>/role")
@roles_required(Staff.ADMIN)
def change_role(staff_id):
    """Change a staff member's role or community."""
    member = _member(staff_id)
    form = RoleForm(prefix=f"s{member.id}")
    _fill(form)
    if form.validate_on_submit():
        try:
            staffing.change_role(current_staff(), member, form.role.data, form.community.data or None)
        except CommunityError as exc:
            flash(error_message(exc), "error")
        else:
            flash(_("Saved."), "success")
    return redirect(url_for(".index"))


@bp.route("/password", methods=["GET", "POST"])
@login_required
def own_password():
    """Change one's own password (the current one is needed)."""
    form = OwnPasswordForm()
    me = current_staff()
    if form.validate_on_submit():
        if form.new.data != form.again.data:
            form.again.errors.append(_("The two new passwords differ."))
        else:
            try:
                check_password(form.new.data, me.username)
                changed = staffing.change_own_password(me, form.current.data, form.new.data)
            except CommunityError as exc:
                flash(error_message(exc), "error")
            else:
                staffing.end_sessions(changed)  # other sessions end; this one carries on
                login_user(StaffUser(Staff.get_by_id(changed.id)))
                flash(_("Your password is changed."), "success")
                return redirect(url_for("home.index"))
    return render_template("staff/password.html", form=form, forced=me.must_change_password)
