"""Cases (事事有回音): a staff member's inbox, a report written down for a resident, and a case's
page with its history and the next step."""

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from community import Case, CaseEvent, CommunityError, Staff, cases
from community.people import mask_phone

from .auth import current_staff, roles_required
from .forms import CaseActionForm, CaseForm, choices
from .i18n import error_message
from .util import once, one_resident

bp = Blueprint("cases", __name__, url_prefix="/cases")
HANDLERS = (Staff.COORDINATOR, Staff.GRID_WORKER)


def _case_for_staff(case_id):
    case = Case.get_or_none(Case.id == case_id)
    if case is None:
        abort(404)
    if not cases.may_handle(current_staff(), case):
        abort(403)
    return case


@bp.get("/")
@roles_required(*HANDLERS)
def index():
    """What to do: new reports, one's own cases, those waiting for the reporter, and overdue ones."""
    return render_template("cases/index.html", inbox=cases.inbox(current_staff()), urgency=cases.urgency,
                           kind=lambda c: cases.category(c.category).name(str(get_locale())))


@bp.route("/new", methods=["GET", "POST"])
@roles_required(*HANDLERS)
def new():
    """Write down what a resident reports in person or by phone."""
    form = CaseForm()
    language = str(get_locale())
    form.category.choices = choices((c.code, c.name(language)) for c in cases.CATEGORIES)
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
    return render_template("cases/show.html", case=case, events=events, form=CaseActionForm(),
                           colleagues=[s for s in cases.colleagues(case) if s.id != case.assignee_id],
                           urgency=cases.urgency(case), phone=mask_phone(case.reporter.phone),
                           kind=cases.category(case.category).name(str(get_locale())))


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
