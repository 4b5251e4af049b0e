"""Admin pages: point rules and the audit log."""

import json
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

import ledger
from catalog.reports import local_bounds
from community import CommunityError, Staff
from community.audit import audit_log
from community.rules import current_rules, rule_history, set_rule

from .auth import current_staff, roles_required
from .forms import RuleForm
from .i18n import category_name, error_message, role_name, select_locale
from .util import once, parse_day

bp = Blueprint("admin", __name__)


@bp.route("/rules", methods=["GET", "POST"])
@roles_required(Staff.ADMIN)
def rules():
    """Point rules: what each category is worth; a change applies to later confirmations."""
    form = RuleForm()
    form.category.choices = [(r.category, r.name(select_locale())) for r in current_rules()] + [
        ("", _("New category (name it below)"))]
    valid = form.validate_on_submit()
    if valid and not form.category.data and not (form.name_zh.data or "").strip():
        form.name_zh.errors.append(_("A new category needs a Chinese name."))
    elif valid:
        try:
            done = once("rule.set", lambda: set_rule(
                current_staff(), form.category.data, ledger.parse_amount(form.points.data),
                form.confirmations_required.data, form.name_zh.data, form.name_en.data,
            ))
        except (CommunityError, ledger.LedgerError) as exc:
            flash(error_message(exc), "error")
        else:
            if not done.repeated:
                flash(_("Rule saved; later confirmations use it."), "success")
            return redirect(url_for(".rules"))
    history = {r.category: rule_history(r.category) for r in current_rules()}
    return render_template("admin/rules.html", rules=current_rules(), history=history, form=form)


# What each audited action says, as a sentence a community worker reads (not its key or JSON).
SENTENCES = {
    "deed.report": _l("recorded a deed (sign-up %(target)s): %(category)s, %(note)s"),
    "signup.confirm": _l("confirmed sign-up %(target)s"),
    "award.reverse": _l("took back the award of sign-up %(target)s: %(reason)s"),
    "signup.join": _l("signed up a resident (sign-up %(target)s)"),
    "signup.cancel": _l("cancelled sign-up %(target)s"),
    "signup.rejected": _l("rejected sign-up %(target)s: %(reason)s"),
    "signup.no_show": _l("marked sign-up %(target)s as not come"),
    "signup.walk_in": _l("recorded a resident who came without signing up (sign-up %(target)s)"),
    "signup.came": _l("recorded that the resident of sign-up %(target)s came after all"),
    "rule.set": _l("set %(category)s to %(points)s points (version %(version)s)"),
    "resident.register": _l("registered resident %(target)s"),
    "resident.edit": _l("changed the details of resident %(target)s"),
    "resident.close": _l("closed the account of resident %(target)s"),
    "activity.create": _l("created activity %(code)s"),
    "activity.edit": _l("changed activity %(target)s"),
    "activity.cancel": _l("cancelled activity %(target)s: %(reason)s"),
    "activity.close": _l("closed sign-ups of activity %(target)s"),
    "activity.reopen": _l("reopened sign-ups of activity %(target)s"),
    "announcement.send": _l("sent an announcement to %(to)s residents: %(text)s"),
    "case.report": _l("wrote down case %(target)s for a resident"),
    "mediator.appoint": _l("appointed %(name)s as a mediator"),
    "mediation.open": _l("opened mediation %(target)s"),
    "mediation.step_aside": _l("recorded that %(name)s steps aside from mediation %(target)s"),
    "mediation.close": _l("closed mediation %(target)s"),
    "mediation.follow_up": _l("recorded the follow-up visit of mediation %(target)s"),
    "case.accept": _l("took on case %(target)s"),
    "case.handled": _l("dealt with case %(target)s: %(detail)s"),
    "case.close": _l("closed case %(target)s as solved"),
    "case.reopen": _l("opened case %(target)s again"),
    "case.refuse": _l("refused case %(target)s: %(detail)s"),
    "case.merge": _l("merged case %(target)s into %(detail)s"),
    "case.transfer": _l("handed case %(target)s to %(detail)s"),
    "case.kind": _l("set the kind of problem %(name)s: hours %(hours)s, %(points)s points"),
    "goods.create": _l("put goods %(target)s on sale at %(points)s points"),
    "goods.edit": _l("changed goods %(target)s (%(points)s points)"),
    "stock.receive": _l("received %(quantity)s of goods %(target)s"),
    "stock.adjust": _l("corrected the stock of goods %(target)s by %(quantity)s: %(reason)s"),
    "card.issue": _l("made a member card for resident %(target)s"),
    "card.reissue": _l("made a new member card for resident %(target)s (the old one stops working)"),
    "card.code": _l("sent a counter code to resident %(target)s"),
    "card.pin": _l("set the card PIN of resident %(target)s"),
    "card.pin_removed": _l("removed the card PIN of resident %(target)s"),
    "card.pin_wrong": _l("a wrong card PIN was typed for resident %(target)s"),
    "simulator.message": _l("texted the dialogue in the SMS simulator as %(phone)s (resident %(target)s)"),
    "code.wrong_digits": _l("wrong six digits were typed for resident %(target)s"),
    "card.pin_used": _l("resident %(target)s paid with their card PIN"),
    "checkout": _l("checked out %(points)s points (receipt %(target)s)"),
    "checkout.void": _l("voided checkout %(target)s: %(reason)s"),
    "report.export": _l("exported %(target)s"),
    "residents.export": _l("exported the residents list (%(count)s residents)"),
    "login.lockout": _l("logins locked for %(target)s"),
    "place.add": _l("added the place %(name)s (%(target)s)"),
    "place.change": _l("changed the place %(name)s (%(target)s)"),
    "place.move": _l("moved the place %(target)s under %(to)s"),
    "place.archive": _l("archived the place %(target)s"),
    "place.restore": _l("brought back the place %(target)s"),
    "staff.create": _l("added staff member %(username)s (%(role)s)"),
    "staff.disable": _l("disabled staff member %(username)s"),
    "staff.enable": _l("enabled staff member %(username)s again"),
    "staff.reset_password": _l("gave staff member %(username)s a one-time password"),
    "staff.role": _l("made staff member %(username)s %(role)s %(community)s"),
    "staff.own_password": _l("changed their own password"),
    "login.unlock": _l("logins unlocked for %(target)s"),
}


def sentence(event):
    """An audit event as a sentence in the reader's language."""
    detail = json.loads(event.detail or "{}")
    if not isinstance(detail, dict):
        detail = {}
    points = detail.get("total", detail.get("points"))
    params = {"target": event.target.partition(":")[2] or event.target, "reason": "", "note": "",
              "code": "", "to": "", "text": "", "quantity": "", "version": "", "username": "", "community": "",
              "count": "", "name": "", "phone": "", "detail": "", "hours": "",
              **detail, "role": role_name(detail.get("role", "")),
              "points": ledger.format_amount(points) if isinstance(points, int) else "",
              "category": category_name(detail.get("category") or event.target.partition(":")[2])}
    template = SENTENCES.get(event.action)
    return str(template) % params if template is not None else f"{event.action} {event.target}"


class _Blanks(dict):
    """Every parameter of a sentence as "…", to name the kind of action in a filter."""

    def __missing__(self, key):
        return "…"


@bp.get("/audit")
@roles_required(Staff.ADMIN)
def audit():
    """Every staff action, newest first; by person, action and day."""
    args = request.args
    staff_id = args.get("staff", type=int)
    action = args.get("action") if args.get("action") in SENTENCES else None
    day = parse_day(args.get("day", ""))
    start, end = local_bounds(day, day, ZoneInfo(current_app.config["TIMEZONE"])) if day else (None, None)
    events = audit_log(limit=100, before=args.get("before", type=int), staff_id=staff_id, action=action,
                       start=start, end=end)
    filters = {"staff": staff_id or "", "action": action or "", "day": day.isoformat() if day else ""}
    return render_template("admin/audit.html", events=events, sentence=sentence, filters=filters,
                           people=Staff.select().order_by(Staff.username),
                           actions=sorted(((key, str(text) % _Blanks()) for key, text in SENTENCES.items()),
                                          key=lambda pair: pair[1]),
                           next_cursor=events[-1].id if len(events) == 100 else None)
