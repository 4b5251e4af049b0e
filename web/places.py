"""The district's places (admins): the tree, add, rename and set the office phone, move, archive."""

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from community import CommunityError, Staff, places

from .auth import current_staff, roles_required
from .forms import ActionForm, PlaceForm
from .i18n import error_message

bp = Blueprint("places", __name__, url_prefix="/places")

LEVEL_NAMES = {"district": _l("District"), "street": _l("Street or town"), "community": _l("Community or village"),
               "grid": _l("Grid"), "unit": _l("Building unit")}


def _parents():
    return [("", "—")] + [(p.code, f"{'· ' * depth}{p.name_zh} ({p.code})") for depth, p in places.tree()
                          if p.level != "unit" and not p.archived]


@bp.route("/", methods=["GET", "POST"])
@roles_required(Staff.ADMIN)
def index():
    """The tree, each place with its level, code, office phone and what can be done to it."""
    form = PlaceForm()
    form.level.choices = [(level, LEVEL_NAMES[level]) for level in places.LEVELS]
    form.parent.choices = _parents()
    if form.validate_on_submit():
        try:
            place = places.add_place(form.code.data, form.name_zh.data, form.level.data, form.parent.data or None,
                                     form.name_en.data or "", form.phone.data or "", staff=current_staff())
        except CommunityError as exc:
            flash(error_message(exc), "error")
        else:
            flash(_("Added %(name)s.", name=place.name_zh), "success")
            return redirect(url_for(".index"))
    return render_template("places/index.html", tree=places.tree(), form=form, action=ActionForm(),
                           level_names=LEVEL_NAMES, parents=_parents())


@bp.post("/<code>/change")
@roles_required(Staff.ADMIN)
def change(code):
    """Rename a place, set its office phone, or move it under another parent."""
    if ActionForm().validate_on_submit():
        try:
            place = places.change_place(code, name_zh=request.form.get("name_zh", ""), staff=current_staff(),
                                        name_en=request.form.get("name_en", ""), phone=request.form.get("phone", ""))
            if (request.form.get("parent") or "") != (place.parent.code if place.parent_id else ""):
                places.move_place(current_staff(), code, request.form.get("parent") or None)
        except CommunityError as exc:
            flash(error_message(exc), "error")
        else:
            flash(_("Saved."), "success")
    return redirect(url_for(".index"))


@bp.post("/<code>/archive")
@roles_required(Staff.ADMIN)
def archive(code):
    """Archive a place nobody lives in (or bring it back)."""
    if ActionForm().validate_on_submit():
        try:
            places.archive_place(current_staff(), code, request.form.get("archived") == "1")
        except CommunityError as exc:
            flash(error_message(exc), "error")
        else:
            flash(_("Saved."), "success")
    return redirect(url_for(".index"))

