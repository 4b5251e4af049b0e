"""Mediation pages (近邻评理室): the list, opening a mediation, its page (stepping aside, the
outcome, the follow-up visit), and the appointed mediators."""

import datetime

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from community import Community, CommunityError, Mediation, MediationSeat, Staff, mediation
from community.errors import ResidentNotFound
from community.people import can_act, visible_communities

from .auth import current_staff, roles_required
from .forms import ActionForm, AppointForm, MediationCloseForm, MediationForm, ReasonForm, choices
from .i18n import error_message
from .util import community_choices, once, one_resident, to_utc

bp = Blueprint("mediation", __name__, url_prefix="/mediations")
COORDINATOR = Staff.COORDINATOR
SOURCES = {"walk_in": _l("a walk-in"), "report": _l("a resident's report"), "police": _l("the police"),
           "hotline": _l("the 12345 hotline")}
OUTCOMES = {"written": _l("agreement in writing"), "oral": _l("oral agreement"),
            "referred": _l("no agreement: referred elsewhere"), "withdrawn": _l("withdrawn")}


def _mediation_for_staff(mediation_id):
    found = Mediation.by_id(mediation_id)
    if found is None or not mediation.may_see(current_staff(), found):
        abort(404 if found is None else 403)
    return found


def _community(community_id):
    community = Community.by_id(community_id)
    if community is None or not can_act(current_staff(), community, COORDINATOR):
        abort(403)
    return community


@bp.get("/")
@roles_required(COORDINATOR, Staff.GRID_WORKER)
def index():
    staff = current_staff()
    return render_template("mediation/index.html", mediations=mediation.visible(staff, visible_communities(staff)),
                           late=mediation.late, sources=SOURCES, outcomes=OUTCOMES)


@bp.route("/new", methods=["GET", "POST"])
@roles_required(COORDINATOR)
def new():
    form = MediationForm()
    form.community.choices = community_choices(str(get_locale()))
    form.source.choices = choices(SOURCES.items())
    communities = visible_communities(current_staff())
    form.mediators.choices = choices((m.id, f"{m.name()} · {m.community.name(str(get_locale()))}")
                                     for c in communities for m in mediation.mediators_of(c))
    if form.validate_on_submit():
        community = _community(form.community.data)
        done = once("mediation.open", lambda: mediation.open_mediation(
            current_staff(), community, form.summary.data, form.parties.data, form.mediators.data,
            source=form.source.data, private=form.private.data))
        return redirect(url_for(".show", mediation_id=done.result))
    return render_template("mediation/new.html", form=form)


@bp.get("/<int:mediation_id>")
@roles_required(COORDINATOR, Staff.GRID_WORKER)
def show(mediation_id):
    found = _mediation_for_staff(mediation_id)
    close_form = MediationCloseForm()
    close_form.outcome.choices = choices(OUTCOMES.items())
    return render_template("mediation/show.html", mediation=found, parties=mediation.parties_of(found),
                           seats=list(found.seats), late=mediation.late(found), sources=SOURCES, outcomes=OUTCOMES,
                           close_form=close_form, aside_form=ReasonForm(), follow_form=ReasonForm(),
                           can_change=can_act(current_staff(), found.community, COORDINATOR))


def _day(value):
    return to_utc(datetime.datetime.combine(value, datetime.time(12))) if value else None


@bp.post("/<int:mediation_id>/close")
@roles_required(COORDINATOR)
def close(mediation_id):
    found = _mediation_for_staff(mediation_id)
    form = MediationCloseForm()
    form.outcome.choices = choices(OUTCOMES.items())
    if not form.validate_on_submit():
        flash(_("Choose the outcome."), "error")
    else:
        try:
            mediation.close(current_staff(), found, form.outcome.data, terms=form.terms.data,
                            carry_out_by=_day(form.carry_out_by.data), follow_up_on=_day(form.follow_up_on.data))
        except CommunityError as exc:
            flash(error_message(exc), "error")
        else:
            flash(_("Closed. Each resident mediator got their points if the parties agreed."), "success")
    return redirect(url_for(".show", mediation_id=found.id))


@bp.post("/<int:mediation_id>/seats/<int:seat_id>/step-aside")
@roles_required(COORDINATOR)
def step_aside(mediation_id, seat_id):
    found = _mediation_for_staff(mediation_id)
    seat = MediationSeat.get_or_none((MediationSeat.id == seat_id) & (MediationSeat.mediation == found.id))
    form = ReasonForm()
    if seat is None:
        abort(404)
    if not form.validate_on_submit():
        flash(_("Say how the mediator is related to a party."), "error")
    else:
        try:
            mediation.step_aside(current_staff(), found, seat, form.reason.data)
        except CommunityError as exc:
            flash(error_message(exc), "error")
    return redirect(url_for(".show", mediation_id=found.id))


@bp.post("/<int:mediation_id>/follow-up")
@roles_required(COORDINATOR, Staff.GRID_WORKER)
def follow_up(mediation_id):
    found = _mediation_for_staff(mediation_id)
    form = ReasonForm()
    if form.validate_on_submit():
        try:
            mediation.follow_up(current_staff(), found, form.reason.data)
        except CommunityError as exc:
            flash(error_message(exc), "error")
        else:
            flash(_("Follow-up visit recorded."), "success")
    else:
        flash(_("Write what the visit found."), "error")
    return redirect(url_for(".show", mediation_id=found.id))


@bp.route("/mediators", methods=["GET", "POST"])
@roles_required(COORDINATOR)
def mediators():
    """The appointed mediators, and appointing one: a resident, or a staff member by username."""
    form = AppointForm()
    form.community.choices = community_choices(str(get_locale()))
    if form.validate_on_submit():
        community = _community(form.community.data)
        colleague = Staff.get_or_none(Staff.username == form.phone.data.strip())
        try:
            resident = None if colleague else one_resident(form.phone.data)
        except ResidentNotFound:
            flash(error_message(ResidentNotFound()), "error")
        else:
            mediation.appoint(current_staff(), community, resident=resident, staff_member=colleague)
            flash(_("Appointed."), "success")
            return redirect(url_for(".mediators"))
    appointed = [m for c in visible_communities(current_staff()) for m in mediation.mediators_of(c)]
    return render_template("mediation/mediators.html", form=form, appointed=appointed, action_form=ActionForm())
