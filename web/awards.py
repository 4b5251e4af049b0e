"""Decisions on single sign-ups, ad-hoc awards, and reversals."""

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from community import Signup, Staff
from community import awards as service
from community.people import can_act, visible_communities
from community.rules import current_rules

from .auth import current_staff, roles_required
from .forms import ActionForm, DeedForm, ReasonForm, choices
from .util import once, one_resident

bp = Blueprint("awards", __name__, url_prefix="/awards")
COORDINATOR = Staff.COORDINATOR


def _signup_for_staff(signup_id):
    signup = Signup.by_id(signup_id)
    if signup is None:
        abort(404)
    community = signup.activity.community if signup.activity_id else signup.resident.community
    if not can_act(current_staff(), community, COORDINATOR):
        abort(403)
    return signup


def _back(signup):
    target = request.form.get("next", "")
    if target.startswith("/") and not target.startswith("//"):
        return redirect(target)
    if signup.activity_id:
        return redirect(url_for("activities.show", activity_id=signup.activity_id))
    return redirect(url_for(".pending"))


@bp.get("/")
@roles_required(COORDINATOR)
def pending():
    """Sign-ups and reported deeds waiting for a decision."""
    signups = service.pending_for(visible_communities(current_staff()))
    progress = {s.id: service.awaiting_second_confirmation(s) for s in signups}
    return render_template("awards/pending.html", signups=signups, progress=progress,
                           action_form=ActionForm(), reject_form=ReasonForm())


@bp.route("/new", methods=["GET", "POST"])
@roles_required(COORDINATOR, Staff.GRID_WORKER)
def new():
    """Report community work done outside an activity (a rescue afterwards) and confirm it; a
    grid worker's report waits for a coordinator."""
    form = DeedForm()
    form.category.choices = choices((r.category, r.name(str(get_locale()))) for r in current_rules())
    if request.method == "GET" and request.args.get("phone"):
        form.phone.data = request.args["phone"][:32]  # from a resident's page
    if form.validate_on_submit():
        resident = one_resident(form.phone.data)
        done = once("deed.record", lambda: service.record_deed(current_staff(), resident, form.category.data,
                                                               form.note.data))
        if not done.repeated:
            if done.made.state == Signup.CONFIRMED:
                flash(_("Points awarded."), "success")
            elif current_staff().role == Staff.GRID_WORKER:
                flash(_("Reported. A coordinator confirms it before points are awarded."), "success")
            else:
                flash(_("Recorded. A second staff member must confirm it before points are awarded."), "success")
        return redirect(url_for("residents.show", resident_id=resident.id))
    return render_template("awards/new.html", form=form)


@bp.post("/signups/<int:signup_id>/confirm")
@roles_required(COORDINATOR)
def confirm(signup_id):
    """Confirm one sign-up."""
    signup = _signup_for_staff(signup_id)
    if ActionForm().validate_on_submit():
        signup = service.confirm_participation(current_staff(), signup)
        if signup.state == Signup.CONFIRMED:
            flash(_("Confirmed: points awarded."), "success")
        else:
            flash(_("Confirmed. A second staff member must confirm it too."), "success")
    return _back(signup)


@bp.post("/signups/<int:signup_id>/reject")
@roles_required(COORDINATOR)
def reject(signup_id):
    """Reject one sign-up with a reason."""
    signup = _signup_for_staff(signup_id)
    form = ReasonForm()
    if form.validate_on_submit():
        service.reject_participation(current_staff(), signup, form.reason.data)
        flash(_("Rejected."), "success")
    else:
        flash(_("A reason is required."), "error")
    return _back(signup)


@bp.post("/signups/<int:signup_id>/no-show")
@roles_required(COORDINATOR)
def no_show(signup_id):
    """Record that the resident did not come."""
    signup = _signup_for_staff(signup_id)
    if ActionForm().validate_on_submit():
        service.mark_no_show(current_staff(), signup)
        flash(_("Marked as no-show."), "success")
    return _back(signup)


@bp.route("/signups/<int:signup_id>/reverse", methods=["GET", "POST"])
@roles_required(COORDINATOR)
def reverse(signup_id):
    """Take back a confirmed award, with a reason."""
    signup = _signup_for_staff(signup_id)
    form = ReasonForm()
    if form.validate_on_submit():
        service.reverse_award(current_staff(), signup, form.reason.data)
        flash(_("The award was reversed."), "success")
        return redirect(url_for("residents.show", resident_id=signup.resident_id))
    return render_template("awards/reverse.html", form=form, signup=signup)
