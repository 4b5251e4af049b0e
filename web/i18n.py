"""Chinese (简体, the default) and English: one gettext catalogue for pages, bot and SMS."""

from flask import Blueprint, redirect, request, session
from flask_babel import Babel
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from community.rules import current_rule_or_none

from .auth import safe_next

LANGUAGES = ("zh_Hans", "en")
bp = Blueprint("i18n", __name__)


def select_locale():
    """The language chosen in this session, else zh_Hans."""
    lang = session.get("lang")
    return lang if lang in LANGUAGES else "zh_Hans"


def init_babel(app, translations_dir):
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "zh_Hans")
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = translations_dir
    Babel(app, locale_selector=select_locale, timezone_selector=lambda: app.config["TIMEZONE"])
    app.jinja_env.globals["current_language"] = select_locale


ROLE_NAMES = {"admin": _l("Admin"), "coordinator": _l("Coordinator"), "clerk": _l("Clerk"),
              "grid_worker": _l("Grid worker or unit head")}


def role_name(role):
    """A staff role as people call it (协调员), never its key."""
    return str(ROLE_NAMES.get(role, role))


def category_name(category):
    """A point category as people call it (救援, Rescue), never its key."""
    rule = current_rule_or_none(category)
    return rule.name(select_locale()) if rule else category


def error_message(exc):
    """Translate a named domain error: its docstring is the catalogue's msgid, formatted with the
    error's parameters. A more specific detail is shown only where the catalogue translates it:
    an English tail never reaches a Chinese reader."""
    summary = (type(exc).__doc__ or "").strip()
    detail = str(exc)
    if "%(" in summary:
        return _(summary, **getattr(exc, "details", {}))
    if not summary or detail == summary:
        return _(detail)
    translated = _(detail)
    if translated != detail or select_locale() == "en":
        return f"{_(summary)} ({translated})"
    return _(summary)


@bp.post("/language")
def switch_language():
    """Switch the page language for this session."""
    lang = request.form.get("lang")
    if lang in LANGUAGES:
        session["lang"] = lang
    return redirect(safe_next(request.form.get("next")))
