"""Admin pages: point rules and the audit log."""

import json

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

import ledger
from community import CommunityError, Staff
from community.audit import audit_log
from community.rules import current_rules, rule_history, set_rule

from .auth import current_staff, roles_required
from .forms import RuleForm
from .i18n import error_message
from .util import once

bp = Blueprint("admin", __name__)


@bp.route("/rules", methods=["GET", "POST"])
@roles_required(Staff.ADMIN)
def rules():
    """Point rules: what each category is worth; a change applies to later confirmations."""
    form = RuleForm()
    if form.validate_on_submit():
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


@bp.get("/audit")
@roles_required(Staff.ADMIN)
def audit():
    """Every staff action, newest first."""
    before = request.args.get("before", type=int)
    events = audit_log(limit=100, before=before)
    return render_template("admin/audit.html", events=events, loads=json.loads,
                           next_cursor=events[-1].id if len(events) == 100 else None)
