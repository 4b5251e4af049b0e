"""Cases (事事有回音): a staff member's inbox, a report written down for a resident, and a case's
page with its history and the next step."""

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

import ledger
from community import Case, CaseEvent, Community, CommunityError, Photo, Staff, cases
from community.people import can_act, mask_phone, visible_communities

from .auth import current_staff, roles_required
from .forms import CaseActionForm, CaseForm, KindForm, choices
from .i18n import error_message
from .util import once, one_resident

bp = Blueprint("cases", __name__, url_prefix="/cases")
HANDLERS = (Staff.COORDINATOR, Staff.GRID_WORKER)


def _case_for_staff(case_id):
    case = Case.by_id(case_id)
    if case is None:
        abort(404)
    if not cases.may_handle(current_staff(), case):
        abort(403)
    return case


@bp.get("/")
@roles_required(*HANDLERS)
def index():
    """What to do: new reports, one's own cases, those waiting for the reporter, and overdue ones."""
    staff = current_staff()
    kind = cases.kinds_for(visible_communities(staff))
    return render_template("cases/index.html", inbox=cases.inbox(staff), urgency=cases.urgency,
                           kind=lambda c: kind(c).name(str(get_locale())))


@bp.route("/new", methods=["GET", "POST"])
@roles_required(*HANDLERS)
def new():
    """Write down what a resident reports in person or by phone."""
    form = CaseForm()
    language = str(get_locale())
    offered = {}  # every kind the staff member's communities offer, named as they name it
    for community in visible_communities(current_staff()):
        for kind in cases.categories(community.id):
            offered.setdefault(kind.code, kind.name(language))
    form.category.choices = choices(offered.items())
    if form.validate_on_submit():
        resident = one_resident(form.phone.data)
        done = once("case.report", lambda: cases.report(resident, form.category.data, form.text.data,
                                                        place=form.place.data, staff=current_staff()))
        if not done.repeated:
            flash(_("Recorded as no. %(case)s; the resident is told its number.", case=done.result), "success")
        return redirect(url_for(".show", case_id=done.result))
    return render_template("cases/new.html", form=form)


@bp.get("/<int:case_id>")
@roles_required(*HANDLERS)
def show(case_id):
    case = _case_for_staff(case_id)
    events = list(CaseEvent.select().where(CaseEvent.case == case.id).order_by(CaseEvent.id))
    photos = [p.id for p in Photo.select(Photo.id).where(Photo.case == case.id).order_by(Photo.id)]
    return render_template("cases/show.html", case=case, events=events, form=CaseActionForm(), photos=photos,
                           colleagues=[s for s in cases.colleagues(case) if s.id != case.assignee_id],
                           urgency=cases.urgency(case), phone=mask_phone(case.reporter.phone),
                           kind=cases.category(case.category, case.community_id).name(str(get_locale())))


@bp.get("/<int:case_id>/photos/<int:photo_id>")
@roles_required(*HANDLERS)
def photo(case_id, photo_id):
    """A photo sent with the report, to those who may handle the case."""
    case = _case_for_staff(case_id)
    found = Photo.get_or_none((Photo.id == photo_id) & (Photo.case == case.id))
    if found is None:
        abort(404)
    response = make_response(bytes(found.data))
    response.headers.update({"Content-Type": "image/jpeg", "Cache-Control": "private, max-age=86400",
                             "X-Content-Type-Options": "nosniff"})
    return response


@bp.post("/<int:case_id>")
@roles_required(*HANDLERS)
def act(case_id):
    """The next step, by the button pressed: accept, handled (saying what was done), solved or not
    solved (checked by staff), refuse (with a reason), or merge into an earlier case."""
    case = _case_for_staff(case_id)
    form = CaseActionForm()
    staff, step, note = current_staff(), request.form.get("step", ""), form.note.data or ""
    steps = {
        "accept": lambda: cases.accept(staff, case),
        "handled": lambda: cases.handled(staff, case, note),
        "solved": lambda: cases.verify(case, True, staff=staff),
        "unsolved": lambda: cases.verify(case, False, staff=staff),
        "refuse": lambda: cases.refuse(staff, case, note),
        "merge": lambda: cases.merge(staff, case, note.strip().lstrip("#")),
        "transfer": lambda: cases.transfer_case(staff, case, request.form.get("to", "")),
    }
    if not form.validate_on_submit() or step not in steps:
        flash(_("Choose one of the buttons."), "error")
    else:
        try:
            steps[step]()
        except CommunityError as exc:
            flash(error_message(exc), "error")
        else:
            flash(_("Saved; the reporter is told."), "success")
    return redirect(url_for(".show", case_id=case.id))


NEW_KIND = {"accept_hours": 4, "handle_hours": 72, "verify_hours": 48, "points": "0", "active": True}


def _kind_form(kind, handlers, submitted):
    """The form for one kind (None: a new one), filled in from the request if it is the one sent."""
    prefix = kind.code if kind else "new"
    formdata = request.form if submitted == prefix else None
    form = KindForm(prefix=prefix, formdata=formdata, data=NEW_KIND if not kind else {
        "name_zh": kind.name_zh, "name_en": kind.name_en, "accept_hours": cases.hours_of(kind.accept),
        "handle_hours": cases.hours_of(kind.handle), "verify_hours": cases.hours_of(kind.verify),
        "points": ledger.format_amount(kind.points), "handler": str(kind.handler_id or ""), "active": kind.active})
    form.handler.choices = handlers
    form.kind = prefix
    return form


@bp.route("/kinds", methods=["GET", "POST"])
@roles_required(Staff.COORDINATOR)
def kinds():
    """A community's kinds of problem: what residents pick from, each step's time limit, the
    points a verified fix earns, and who takes its reports first."""
    staff = current_staff()
    places = [c for c in visible_communities(staff)
              if c.level == Community.COMMUNITY and can_act(staff, c, Staff.COORDINATOR)]
    if not places:
        abort(403)
    community = next((c for c in places if str(c.id) == request.args.get("community")), places[0])
    handlers = choices([("", _("The reporter's grid worker"))] + [
        (str(s.id), s.display_name or s.username) for s in cases.colleagues_in(community)])
    submitted = request.form.get("kind") if request.method == "POST" else None
    forms = [_kind_form(k, handlers, submitted) for k in [*cases.categories(community.id, everything=True), None]]
    form = next((f for f in forms if f.kind == submitted), None)
    if submitted is not None:
        if form is None or not form.validate():
            flash(_("Please check the kind's details."), "error")
        else:
            try:
                done = once("case.kind", lambda: cases.save_kind(
                    staff, community, "" if form.kind == "new" else form.kind, name_zh=form.name_zh.data,
                    name_en=form.name_en.data or "", accept_hours=form.accept_hours.data,
                    handle_hours=form.handle_hours.data, verify_hours=form.verify_hours.data,
                    points=ledger.parse_amount(form.points.data or "0", allow_zero=True),
                    handler_id=form.handler.data or None, active=form.active.data))
            except (CommunityError, ledger.LedgerError) as exc:
                flash(error_message(exc), "error")
            else:
                if not done.repeated:
                    flash(_("Saved; new reports use it."), "success")
                return redirect(url_for(".kinds", community=community.id))
    return render_template("cases/kinds.html", forms=forms, community=community, places=places)
