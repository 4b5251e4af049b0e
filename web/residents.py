"""Residents: search, register, import and export, detail with balance and passbook, edit, close."""

import csv
import io

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

import ledger
from community import Community, CommunityError, Signup, Staff, activities, awards, contacts, places
from community import people as service

from .auth import current_staff, roles_required
from .forms import ActionForm, ResidentForm, choices
from .i18n import error_message
from .util import community_choices, find_residents, once, region

bp = Blueprint("residents", __name__, url_prefix="/residents")
COORDINATOR = Staff.COORDINATOR
GRID_WORKER = Staff.GRID_WORKER  # 网格员/单元长: their grid's residents only
PAGE = 20
LIST_PAGE = 50


def _resident_for_staff(resident_id):
    resident = service.get_resident(resident_id)
    if not service.in_reach(current_staff(), resident):
        abort(403)
    return resident


@bp.get("/")
@roles_required(COORDINATOR, GRID_WORKER)
def index():
    """Search residents by name, building or unit, part of the phone number, or member card."""
    q = request.args.get("q", "")[:60]
    sort = "unit" if request.args.get("sort") == "unit" else "name"
    found = sorted(find_residents(q, limit=None), key=service.by_unit if sort == "unit" else service.by_name)
    grids = places.grids_of(service.visible_communities(current_staff())) if current_staff().role != GRID_WORKER else []
    grid = next((g for g in grids if g.code == request.args.get("grid")), None)
    if grid is not None:  # the residents of one grid
        found = [r for r in found if service.in_grid(r, grid)]
    pages = max(1, -(-len(found) // LIST_PAGE))
    page = min(max(request.args.get("page", 1, type=int), 1), pages)
    return render_template("residents/index.html", residents=found[(page - 1) * LIST_PAGE:page * LIST_PAGE],
                           count=len(found), page=page, pages=pages, q=q, sort=sort, mask=service.mask_phone,
                           communities=service.visible_communities(current_staff()), grids=grids,
                           grid=grid.code if grid else "")


@bp.route("/new", methods=["GET", "POST"])
@roles_required(COORDINATOR, GRID_WORKER)
def new():
    """Register a resident."""
    form = ResidentForm()
    form.community.choices = community_choices(str(get_locale()))
    if form.validate_on_submit():
        try:
            done = once("resident.register", lambda: service.register_resident(
                Community.get_by_id(form.community.data), form.display_name.data,
                phone=form.phone.data or None, language=form.language.data,
                grid_label=form.grid_label.data, unit_label=form.unit_label.data,
                region=region(), staff=current_staff(),
            ))
        except CommunityError as exc:
            flash(error_message(exc), "error")
        else:
            if not done.repeated:
                flash(_("Resident registered."), "success")
            return redirect(url_for(".show", resident_id=done.result))
    return render_template("residents/form.html", form=form, resident=None)


@bp.route("/<int:resident_id>/edit", methods=["GET", "POST"])
@roles_required(COORDINATOR)
def edit(resident_id):
    """Edit a resident's details."""
    resident = _resident_for_staff(resident_id)
    form = ResidentForm(obj=resident if request.method == "GET" else None)
    form.community.choices = choices([(resident.community_id, resident.community.name(str(get_locale())))])
    if request.method == "GET":
        form.community.data = resident.community_id
        form.sms_opt_out.data = contacts.opted_out(resident, contacts.SMS)
    if form.validate_on_submit():
        try:
            service.update_resident(
                current_staff(), resident, display_name=form.display_name.data,
                phone=form.phone.data or None, language=form.language.data,
                grid_label=form.grid_label.data, unit_label=form.unit_label.data,
                sms_opt_out=form.sms_opt_out.data, region=region(),
            )
        except CommunityError as exc:
            flash(error_message(exc), "error")
        else:
            flash(_("Saved."), "success")
            return redirect(url_for(".show", resident_id=resident.id))
    return render_template("residents/form.html", form=form, resident=resident)


@bp.get("/<int:resident_id>")
@roles_required(COORDINATOR, GRID_WORKER)
def show(resident_id):
    """A resident: details, balance, passbook history (paginated) and awards."""
    resident = _resident_for_staff(resident_id)
    before = request.args.get("before", type=int)
    lines = ledger.history(resident.account_id, limit=PAGE, before=before)
    awards = list(
        Signup.select().where(Signup.resident == resident.id).order_by(Signup.id.desc()).limit(50)
    )
    coming = [a for a in activities.upcoming_activities(resident.community)
              if not Signup.select().where((Signup.activity == a.id) & (Signup.resident == resident.id)
                                           & Signup.state.in_(Signup.SEATED + (Signup.WAITLISTED,))).exists()]
    return render_template(
        "residents/show.html", resident=resident, balance=ledger.balance(resident.account_id),
        lines=lines, next_cursor=lines[-1].cursor if len(lines) == PAGE else None,
        awards=awards, action_form=ActionForm(), mask=service.mask_phone, coming=coming,
        contacts=contacts.of(resident),
    )


@bp.post("/<int:resident_id>/signup")
@roles_required(COORDINATOR, GRID_WORKER)
def signup(resident_id):
    """Sign a resident up for one of their community's coming activities (a grid worker for the
    residents of their grid, without seeing anyone else's roster)."""
    resident = _resident_for_staff(resident_id)
    if ActionForm().validate_on_submit():
        activity = activities.open_activity_by_code(request.form.get("activity", ""))
        if activity.community_id != resident.community_id:
            abort(403)
        done = once("signup.join", lambda: activities.join(resident, activity, staff=current_staff()))
        if not done.repeated:
            flash(_("Signed up.") if done.made.state == Signup.SIGNED_UP
                  else _("The activity is full: on the waitlist."), "success")
    return redirect(url_for(".show", resident_id=resident.id))


@bp.route("/<int:resident_id>/close", methods=["GET", "POST"])
@roles_required(COORDINATOR)
def close(resident_id):
    """Close a resident's account after saying what it means and deciding about its points and
    sign-ups (history stays)."""
    resident = _resident_for_staff(resident_id)
    if request.method == "POST" and ActionForm().validate_on_submit():
        awards.close_account(current_staff(), resident, points=request.form.get("points") or None,
                             cancel_signups=request.form.get("signups") == "cancel")
        flash(_("The resident's account is closed."), "success")
        return redirect(url_for(".show", resident_id=resident.id))
    return render_template("residents/close.html", resident=resident, balance=ledger.balance(resident.account_id),
                           signups=awards.open_signups(resident), form=ActionForm())


LANGUAGE_NAMES = {"zh_Hans": "中文", "en": "English"}


def _sheet(rows):
    """A CSV in the template's format, with a BOM so that Excel on Windows reads it as UTF-8."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(service.TEMPLATE_HEADER)
    writer.writerows(rows)
    return "\ufeff" + out.getvalue()


def _download(text, filename):
    return Response(text, content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.get("/import/template.csv")
@roles_required(COORDINATOR)
def import_template():
    """An empty sheet with the Chinese headers, and one example row."""
    example = current_staff().community or (service.visible_communities(current_staff()) or [None])[0]
    name = example.name_zh if example else "东梅社区"
    return _download(_sheet([("陈桂兰", "138 0013 8000", name, "第一网格", "3号楼1单元", "中文")]),
                     "linli-residents-template.csv")


@bp.get("/export.csv")
@roles_required(COORDINATOR)
def export():
    """Every resident one may see, in the import's format (importing it again changes nothing)."""
    grid = next((g for g in places.grids_of(service.visible_communities(current_staff()))
                 if g.code == request.args.get("grid")), None)
    rows = [(r.display_name, r.phone or "", r.community.name_zh, r.grid_label, r.unit_label,
             LANGUAGE_NAMES.get(r.language, r.language))
            for r in sorted(find_residents("", limit=None), key=service.by_unit) if r.status != r.CLOSED
            and (grid is None or service.in_grid(r, grid))]
    service.record(current_staff(), "residents.export", "residents", {"count": len(rows)})
    return _download(_sheet(rows), "linli-residents.csv")


@bp.route("/import", methods=["GET", "POST"])
@roles_required(COORDINATOR)
def bulk_import():
    """Residents from a sheet: check it first (each bad row named, with its problem), then import.
    The same engine as `flask import-residents`; importing a file twice changes nothing."""
    form = ActionForm()
    if not form.validate_on_submit():
        return render_template("residents/import.html", form=form, report=None, text="")
    upload = request.files.get("sheet")
    text = request.form.get("text", "")
    try:
        if upload is not None and upload.filename:
            text = service.decode_csv(upload.read())
        if not text.strip():
            raise service.InvalidInput("choose a CSV file first")
        rows = service.read_resident_csv(text)
    except (CommunityError, csv.Error) as exc:
        flash(error_message(exc) if isinstance(exc, CommunityError) else str(exc), "error")
        return render_template("residents/import.html", form=form, report=None, text="")
    commit = request.form.get("step") == "import"
    report = service.import_residents(rows, dry_run=not commit, region=region(), staff=current_staff())
    if commit:
        flash(_("Imported: %(created)s new, %(unchanged)s already registered, %(bad)s rows refused.",
                created=report.created, unchanged=report.unchanged, bad=len(report.errors)),
              "success" if not report.errors else "warning")
    rows_by_line = dict(rows)
    problems = [(line, error_message(exc), rows_by_line.get(line, {})) for line, exc in report.refused]
    return render_template("residents/import.html", form=form, report=report, problems=problems,
                           text="" if commit else text, committed=commit)
