"""Activities: list, create, edit, cancel, roster, sign up a resident, confirm a roster."""

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from community import Community, CommunityError, Resident, Signup, Staff
from community import activities as service
from community.awards import awaiting_second_confirmation, decide_roster, record_attendance
from community.people import can_act, mask_phone, visible_communities
from community.rules import current_rules
from ledger.models import utcnow

from .auth import current_staff, roles_required
from .forms import ActionForm, ActivityForm, JoinForm, OptionalReasonForm, choices
from .i18n import error_message
from .util import community_choices, find_residents, once, one_resident, to_local, to_utc

bp = Blueprint("activities", __name__, url_prefix="/activities")
COORDINATOR = Staff.COORDINATOR


def _activity_for_staff(activity_id):
    activity = service.get_activity(activity_id)
    if not can_act(current_staff(), activity.community, COORDINATOR):
        abort(403)
    return activity


def _fill_choices(form):
    language = str(get_locale())
    form.community.choices = community_choices(language)
    form.category.choices = choices((r.category, r.name(language)) for r in current_rules())


@bp.get("/")
@roles_required(COORDINATOR)
def index():
    """Every activity in the staff member's communities."""
    activities = service.activities_for(visible_communities(current_staff()))
    now = utcnow()
    upcoming = sorted((a for a in activities if a.ends_at > now), key=lambda a: (a.starts_at, a.id))
    return render_template("activities/index.html", upcoming=upcoming,
                           past=[a for a in activities if a.ends_at <= now])


@bp.route("/new", methods=["GET", "POST"])
@roles_required(COORDINATOR)
def new():
    """Create an activity."""
    form = ActivityForm()
    _fill_choices(form)
    if form.validate_on_submit():
        try:
            done = once("activity.create", lambda: service.create_activity(
                current_staff(),
                Community.get_by_id(form.community.data),
                title=form.title.data,
                title_en=form.title_en.data or "",
                category=form.category.data,
                starts_at=to_utc(form.starts_at.data),
                ends_at=to_utc(form.ends_at.data),
                capacity=form.capacity.data,
                description=form.description.data,
                place=form.place.data,
            ))
        except CommunityError as exc:
            flash(error_message(exc), "error")
        else:
            if not done.repeated:
                flash(_("Activity %(code)s created.", code=done.made.code), "success")
            return redirect(url_for(".show", activity_id=done.result))
    return render_template("activities/form.html", form=form, activity=None)


@bp.route("/<int:activity_id>/edit", methods=["GET", "POST"])
@roles_required(COORDINATOR)
def edit(activity_id):
    """Change an open activity."""
    activity = _activity_for_staff(activity_id)
    form = ActivityForm(obj=activity if request.method == "GET" else None)
    _fill_choices(form)
    form.community.choices = choices([(activity.community_id, activity.community.name(str(get_locale())))])
    if request.method == "GET":
        form.community.data = activity.community_id
        form.starts_at.data = to_local(activity.starts_at)
        form.ends_at.data = to_local(activity.ends_at)
    if form.validate_on_submit():
        try:
            service.edit_activity(
                current_staff(), activity,
                title=form.title.data, title_en=form.title_en.data or "", description=form.description.data,
                place=form.place.data,
                category=form.category.data, capacity=form.capacity.data,
                starts_at=to_utc(form.starts_at.data), ends_at=to_utc(form.ends_at.data),
            )
        except CommunityError as exc:
            flash(error_message(exc), "error")
        else:
            flash(_("Saved."), "success")
            return redirect(url_for(".show", activity_id=activity.id))
    return render_template("activities/form.html", form=form, activity=activity)


@bp.get("/<int:activity_id>")
@roles_required(COORDINATOR)
def show(activity_id):
    """An activity with its roster and the actions on it."""
    activity = _activity_for_staff(activity_id)
    roster = service.roster(activity)
    progress = {
        s.id: awaiting_second_confirmation(s) for s in roster if s.state in Signup.PENDING
    }
    started = activity.starts_at <= utcnow()
    q = request.args.get("q", "").strip()[:60]
    on_roster = {s.resident_id for s in roster if s.state not in Signup.ABSENT}
    found = [r for r in find_residents(q) if r.id not in on_roster] if started and q else []
    return render_template(
        "activities/show.html", activity=activity, roster=roster, progress=progress, started=started,
        q=q, found=found, absent=[s for s in roster if s.state in Signup.ABSENT], mask=mask_phone,
        join_form=JoinForm(), action_form=ActionForm(), cancel_form=OptionalReasonForm(),
    )


@bp.post("/<int:activity_id>/attendance")
@roles_required(COORDINATOR)
def attendance(activity_id):
    """Confirm residents who came after all: walk-ins from the picker, the waitlisted, no-shows."""
    activity = _activity_for_staff(activity_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    ids = {int(v) for v in request.form.getlist("resident") if v.isdigit()}
    residents = list(Resident.select().where(Resident.id.in_(ids))) if ids else []
    confirmed, refused = record_attendance(current_staff(), activity, residents)
    if residents:
        flash(_("%(n)d confirmed as having taken part.", n=len(confirmed)), "success")
    for resident, exc in refused:
        flash(f"{resident.display_name}: {error_message(exc)}", "error")
    return redirect(url_for(".show", activity_id=activity.id))


@bp.post("/<int:activity_id>/cancel")
@roles_required(COORDINATOR)
def cancel(activity_id):
    """Cancel an activity; everyone on it is told."""
    activity = _activity_for_staff(activity_id)
    form = OptionalReasonForm()
    if form.validate_on_submit():
        service.cancel_activity(current_staff(), activity, form.reason.data or "")
        flash(_("Activity cancelled; the residents on it will be told."), "success")
    return redirect(url_for(".show", activity_id=activity.id))


@bp.post("/<int:activity_id>/close")
@roles_required(COORDINATOR)
def close(activity_id):
    """Close an activity to new sign-ups; confirmations stay possible."""
    activity = _activity_for_staff(activity_id)
    if ActionForm().validate_on_submit():
        service.close_activity(current_staff(), activity)
        flash(_("Sign-ups are closed."), "success")
    return redirect(url_for(".show", activity_id=activity.id))


@bp.post("/<int:activity_id>/reopen")
@roles_required(COORDINATOR)
def reopen(activity_id):
    """Open a closed activity to sign-ups again."""
    activity = _activity_for_staff(activity_id)
    if ActionForm().validate_on_submit():
        service.reopen_activity(current_staff(), activity)
        flash(_("Sign-ups are open again."), "success")
    return redirect(url_for(".show", activity_id=activity.id))


@bp.post("/<int:activity_id>/join")
@roles_required(COORDINATOR)
def join(activity_id):
    """Sign a resident up on their behalf, by phone number."""
    activity = _activity_for_staff(activity_id)
    form = JoinForm()
    if form.validate_on_submit():
        resident = one_resident(form.phone.data)
        done = once("signup.join", lambda: service.join(resident, activity, staff=current_staff()))
        if not done.repeated:
            flash(_("Signed up.") if done.made.state == Signup.SIGNED_UP
                  else _("The activity is full: on the waitlist."), "success")
    return redirect(url_for(".show", activity_id=activity.id))


@bp.post("/<int:activity_id>/signups/<int:signup_id>/cancel")
@roles_required(COORDINATOR)
def cancel_signup(activity_id, signup_id):
    """Cancel a resident's sign-up on their behalf."""
    activity = _activity_for_staff(activity_id)
    if ActionForm().validate_on_submit():
        signup = Signup.get_or_none((Signup.id == signup_id) & (Signup.activity == activity.id))
        if signup is None:
            abort(404)
        service.cancel(signup.resident, activity, staff=current_staff())
        flash(_("Sign-up cancelled."), "success")
    return redirect(url_for(".show", activity_id=activity.id))


@bp.post("/<int:activity_id>/confirm")
@roles_required(COORDINATOR)
def confirm_roster(activity_id):
    """Confirm the ticked sign-ups and reject those given a reason, in one submission."""
    activity = _activity_for_staff(activity_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    ticked = {int(v) for v in request.form.getlist("confirm") if v.isdigit()}
    reasons = {int(key[7:]): value for key, value in request.form.items()
               if key.startswith("reject-") and key[7:].isdigit()}
    confirmed, rejected, refused = decide_roster(current_staff(), activity, ticked, reasons)
    flash(_("%(confirmed)d confirmed, %(rejected)d rejected.", confirmed=confirmed, rejected=rejected),
          "success")
    for signup, exc in refused:
        flash(f"{signup.resident.display_name}: {error_message(exc)}", "error")
    return redirect(url_for(".show", activity_id=activity.id))
