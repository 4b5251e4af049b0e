"""Linli's web process: staff pages, the counter, webhooks, health, and the `flask` CLI."""

import logging
import os
from pathlib import Path
from zoneinfo import ZoneInfo

from flask import Flask, flash, has_request_context, redirect, render_template, request, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_babel import gettext
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

import ledger
from botapp.dialogue import Dialogue
from botapp.settings import Settings
from catalog.reports import what_for
from community import CommunityError
from community.people import mask_phone_numbers
from ledger.models import to_local

from . import (
    activities,
    admin,
    awards,
    cards,
    cases,
    channels,
    cli,
    counter,
    goods,
    health,
    home,
    i18n,
    mediation,
    places,
    reports,
    residents,
    sms,
    staff,
    util,
)
from .auth import WEBHOOKS, login_manager
from .auth import bp as auth_bp

PROJECT_ROOT = Path(__file__).resolve().parent.parent
csrf = CSRFProtect()


class MaskPhoneNumbers(logging.Filter):
    """Mask phone numbers (one typed into a search box, say) in request log lines."""

    def filter(self, record):
        message = record.getMessage()
        masked = mask_phone_numbers(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


#: No inline script anywhere (scripts are files under /static); styles may be inline attributes;
#: the counter's QR scanner runs its decoder in a worker it makes from a blob.
CSP = ("default-src 'self'; script-src 'self'; worker-src 'self' blob:; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; object-src 'none'; "
       "base-uri 'self'; form-action 'self'; frame-ancestors 'none'")


def _security_headers(response):
    """On every response: no framing, no sniffing, no referrer to other sites, the CSP; and HSTS
    when the request came over HTTPS (directly or through a trusted proxy)."""
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


class _Sessions(SecureCookieSessionInterface):
    """Session cookies are Secure whenever the request is HTTPS, behind a proxy too."""

    def open_session(self, app, request):
        # A request without the cookie (a webhook, a first visit) gets an empty session without
        # building the cookie's signer first.
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)

    def get_cookie_secure(self, app):
        return super().get_cookie_secure(app) or (has_request_context() and request.is_secure)


def create_app(test_config=None):
    """Build the Flask app from the environment, or from `test_config` in tests."""
    os.umask(0o077)  # the database, its WAL, backups and keys: readable by this user only
    app = Flask(
        __name__,
        instance_path=str(PROJECT_ROOT / "instance"),
        template_folder=str(PROJECT_ROOT / "templates"),
    )
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.update(SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_HTTPONLY=True, MAX_CONTENT_LENGTH=5 * 1024 * 1024)
    if test_config is None:
        app.config.update(Settings.from_env(instance_dir=app.instance_path).as_config(), DATABASE_POOL=True)
    else:  # tests: the defaults, then what the test sets
        app.config.update(Settings().as_config(), **test_config)
    app.config["MIGRATIONS_DIR"] = str(PROJECT_ROOT / "migrations")

    if app.config.get("TRUSTED_PROXIES"):
        # Behind a proxy every client would share its address (and its login failure count).
        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    # A served app keeps its connections in a pool: opening one per request costs more than
    # most requests do (and on SQLite, closing the last one checkpoints the WAL).
    ledger.open_database(app.config["DATABASE_URL"], base_dir=PROJECT_ROOT, pool=app.config.get("DATABASE_POOL"),
                         key=app.config["LEDGER_KEY"])
    # peewee connects on the first query of a request; the connection is closed after it.
    app.teardown_appcontext(_close)

    csrf.init_app(app)
    login_manager.init_app(app)
    i18n.init_babel(app, str(PROJECT_ROOT / "translations"))
    _jinja_helpers(app)

    app.extensions["linli.dialogue"] = Dialogue(
        str(PROJECT_ROOT / "translations"), region=app.config["DEFAULT_REGION"], timezone=app.config["TIMEZONE"],
        code_secret=app.config["SECRET_KEY"], bot_username=app.config["TELEGRAM_BOT_USERNAME"],
    )
    csrf.exempt(sms.bp)  # Twilio signs its requests instead
    for blueprint in (health.bp, auth_bp, i18n.bp, home.bp, activities.bp, awards.bp, residents.bp,
                      admin.bp, sms.bp, channels.bp, counter.bp, goods.bp, reports.bp,
                      cards.bp, staff.bp, places.bp, cases.bp, mediation.bp):
        app.register_blueprint(blueprint)
    app.before_request(_refuse_nul)
    app.after_request(_security_headers)
    app.session_interface = _Sessions()
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(CommunityError, _domain_error)
    app.register_error_handler(ledger.LedgerError, _domain_error)
    for code in (403, 404, 405):
        app.register_error_handler(code, lambda e: (render_template("error.html", error=e), e.code))
    cli.register(app)
    if not any(isinstance(f, MaskPhoneNumbers) for f in logging.getLogger("werkzeug").filters):
        logging.getLogger("werkzeug").addFilter(MaskPhoneNumbers())
    return app


def _jinja_helpers(app):
    zone = ZoneInfo(app.config["TIMEZONE"])

    def localtime(value, fmt="%Y-%m-%d %H:%M"):
        if value is None:
            return ""
        return to_local(value, zone).strftime(fmt)

    app.jinja_env.filters["points"] = ledger.format_amount
    app.jinja_env.filters["localtime"] = localtime
    app.jinja_env.filters["error"] = i18n.error_message
    app.jinja_env.globals["new_form_key"] = util.new_form_key
    # A passbook line in the reader's language; a reversal shows its reason (the kind says "reversed").
    app.jinja_env.filters["what_for"] = lambda line: what_for(line, i18n.select_locale(), line.memo)
    app.jinja_env.filters["category"] = i18n.category_name


def _refuse_nul():
    """No staff form or query parameter ever needs a NUL character (and PostgreSQL refuses it).
    SMS bodies are cleaned by the dialogue instead."""
    if request.blueprint in WEBHOOKS:
        return None
    values = (value for _, values in request.values.lists() for value in values)
    if any("\x00" in value for value in values):
        message = gettext("The form contains a character that cannot be used (NUL). Please type it again.")
        return render_template("error.html", message=message), 400


def _csrf_error(error):
    return render_template("error.html", error=error), 400


def _domain_error(error):
    """A refused action: say why in the user's language and go back to where they were."""
    if request.method == "GET":
        status = 404 if type(error).__name__.endswith("NotFound") else 400
        return render_template("error.html", message=i18n.error_message(error)), status
    flash(i18n.error_message(error), "error")
    return redirect(request.referrer if _same_site(request.referrer) else url_for("home.index"))


def _same_site(url):
    return bool(url) and url.startswith(request.host_url)


def _close(exc):
    if not ledger.db.is_closed():
        ledger.db.close()
