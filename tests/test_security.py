"""Security: who may use which route, CSRF on every state change, the SMS webhook's signatures,
what the logs never carry, and staff logins slowed down after failures.

The Telegram webhook's secret token (wrong or missing: refused) is tested with PTB's own webhook
server in tests/test_telegram.py (test_webhook_mode_checks_telegrams_secret_token).
"""

import asyncio
import datetime
import itertools
import json
import logging
import re
import threading
import xml.etree.ElementTree as ET
from urllib.parse import urljoin

import community_factory as make
import httpx
import pytest
from argon2 import PasswordHasher, extract_parameters
from argon2.profiles import RFC_9106_LOW_MEMORY
from flask import request
from logcheck import log_lines, phone_in
from racing import race
from twilio.request_validator import RequestValidator
from webforms import Browser, find_form
from werkzeug.datastructures import MultiDict
from werkzeug.serving import make_server

import ledger
from botapp.models import Inbound
from botapp.worker import Worker
from catalog import cards, codes
from catalog.checkout import checkout
from catalog.goods import create_goods, receive_stock
from catalog.models import CounterCode
from community import Activity, AuditEvent, Notice, Resident, Signup, Staff, cases, mediation, people, places, staffing
from community import logins as throttle
from community.awards import confirm_participation, report_deed
from community.errors import BadCredentials, TooManyLogins
from community.models import LoginFailure, LoginLockout
from ledger.models import utcnow
from web import create_app

BASE = "https://linli.example"
TWILIO_TOKEN = "security-test-token"
PHONE = "+8613800138000"
NATIONAL = "13800138000"
_sids = itertools.count(1)


@pytest.fixture
def app(db_url):
    """The app as production configures it: the SMS webhook open to signed requests."""
    return create_app({"TESTING": True, "DATABASE_URL": db_url, "SECRET_KEY": "test", "PUBLIC_BASE_URL": BASE,
                       "TWILIO_AUTH_TOKEN": TWILIO_TOKEN, "TELEGRAM_BOT_USERNAME": "linli_bot"})


# --- the role x route matrix ---------------------------------------------------------------

ROLES = ("anonymous", "clerk", "coordinator", "other", "admin", "grid")
OK, LOGIN = "ok", "login"  # 200, or a redirect that is not to the login page; a redirect to log in

#: Every endpoint of the app and what each role gets there, in ROLES order: anonymous, a clerk of
#: the north community, a coordinator of north, a coordinator of another community ("other";
#: the routes' objects all belong to north), an admin. A new route fails the test until it has a
#: row here: decide who may use it.
PUBLIC = (OK, OK, OK, OK, OK, OK)
ANY_STAFF = (LOGIN, OK, OK, OK, OK, OK)
COUNTER = (LOGIN, OK, OK, OK, OK, 403)  # a grid worker never uses the counter
COORDINATOR_ANYWHERE = (LOGIN, 403, OK, OK, OK, 403)  # lists and forms that show one's own communities
COORDINATOR_HERE = (LOGIN, 403, OK, 403, OK, 403)  # one of north's activities, residents, goods...
ADMIN_ONLY = (LOGIN, 403, 403, 403, OK, 403)
SIGNED_ONLY = (403, 403, 403, 403, 403, 403)  # Twilio's webhooks: a signature, never a session
# A grid worker of north's grid 1 (网格员): their grid's residents, registering, signing up, reporting.
GRID_ANYWHERE = (LOGIN, 403, OK, OK, OK, OK)
GRID_HERE = (LOGIN, 403, OK, 403, OK, OK)

EXPECTED = {
    "static": PUBLIC,
    "health.healthz": PUBLIC,
    "auth.login": PUBLIC,
    "auth.logout": PUBLIC,
    "i18n.switch_language": PUBLIC,
    "home.index": ANY_STAFF,
    "sms.inbound": SIGNED_ONLY,
    "sms.status": SIGNED_ONLY,
    "sms.android_event": SIGNED_ONLY,
    "activities.index": COORDINATOR_ANYWHERE,
    "activities.new": COORDINATOR_ANYWHERE,
    "activities.show": COORDINATOR_HERE,
    "activities.edit": COORDINATOR_HERE,
    "activities.cancel": COORDINATOR_HERE,
    "activities.close": COORDINATOR_HERE,
    "activities.reopen": COORDINATOR_HERE,
    "activities.join": COORDINATOR_HERE,
    "activities.cancel_signup": COORDINATOR_HERE,
    "activities.confirm_roster": COORDINATOR_HERE,
    "activities.attendance": COORDINATOR_HERE,
    "awards.pending": COORDINATOR_ANYWHERE,
    "awards.new": GRID_ANYWHERE,
    "awards.confirm": COORDINATOR_HERE,
    "awards.reject": COORDINATOR_HERE,
    "awards.no_show": COORDINATOR_HERE,
    "awards.reverse": COORDINATOR_HERE,
    "residents.index": GRID_ANYWHERE,
    "residents.new": GRID_ANYWHERE,
    "residents.show": GRID_HERE,
    "residents.edit": COORDINATOR_HERE,
    "residents.close": COORDINATOR_HERE,
    "admin.rules": ADMIN_ONLY,
    "admin.audit": ADMIN_ONLY,
    "residents.bulk_import": COORDINATOR_ANYWHERE,
    "residents.signup": GRID_HERE,
    "residents.import_template": COORDINATOR_ANYWHERE,
    "residents.export": COORDINATOR_ANYWHERE,
    "places.index": ADMIN_ONLY,
    "places.change": ADMIN_ONLY,
    "places.archive": ADMIN_ONLY,
    "staff.index": ADMIN_ONLY,
    "staff.set_active": ADMIN_ONLY,
    "staff.reset_password": ADMIN_ONLY,
    "staff.change_role": ADMIN_ONLY,
    "staff.own_password": ANY_STAFF,
    "channels.simulator": COORDINATOR_ANYWHERE,
    "channels.announcement": COORDINATOR_ANYWHERE,
    "goods.index": COORDINATOR_ANYWHERE,
    "goods.new": COORDINATOR_ANYWHERE,
    "goods.edit": COORDINATOR_HERE,
    "goods.stock": COORDINATOR_HERE,
    "goods.movements": COORDINATOR_HERE,
    "counter.index": COUNTER,
    "counter.scan": COUNTER,
    "counter.confirm": COUNTER,  # POST /counter/checkout
    # Another community's receipt does not exist as far as its staff can tell.
    "counter.receipt": (LOGIN, OK, OK, 404, OK, 403),
    "counter.void": (LOGIN, 403, OK, 404, OK, 403),
    "counter.checkouts": COUNTER,  # a clerk's own of the day; a coordinator's communities
    "reports.dashboard": COORDINATOR_ANYWHERE,
    "reports.export": COORDINATOR_ANYWHERE,
    "reports.statement": COORDINATOR_HERE,
    "cards.card": COORDINATOR_HERE,
    "cards.issue": COORDINATOR_HERE,
    "cards.pin": COORDINATOR_HERE,
    "cards.sheet": COORDINATOR_HERE,
    "cards.issue_missing": COORDINATOR_HERE,
    "cases.index": GRID_ANYWHERE,
    "cases.new": GRID_ANYWHERE,
    "cases.show": GRID_HERE,
    "cases.act": GRID_HERE,
    "cases.photo": GRID_HERE,
    "cases.kinds": COORDINATOR_ANYWHERE,
    "mediation.index": GRID_ANYWHERE,
    "mediation.new": COORDINATOR_ANYWHERE,
    "mediation.show": GRID_HERE,
    "mediation.close": COORDINATOR_HERE,
    "mediation.step_aside": COORDINATOR_HERE,
    "mediation.follow_up": GRID_HERE,
    "mediation.mediators": COORDINATOR_ANYWHERE,
}


def routes(app):
    """(endpoint, method, rule) for every rule and method of the app, HEAD and OPTIONS aside."""
    return sorted(
        (rule.endpoint, method, rule)
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    )


def test_every_route_has_a_row_in_the_matrix(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert sorted(endpoints - set(EXPECTED)) == [], "decide who may use these routes: add them to EXPECTED"
    assert sorted(set(EXPECTED) - endpoints) == [], "these routes are gone: remove them from EXPECTED"


@pytest.fixture
def world(app):
    """North's staff and objects (an activity that took place, residents, goods, a checkout), a
    coordinator of South, and an admin; built through the services."""
    with app.app_context():
        place = make.build_place()
        staff = {
            "admin": make.staff(Staff.ADMIN, username="boss"),
            "coordinator": make.coordinator(place.north, username="north-coord"),
            "other": make.coordinator(place.south, username="south-coord"),
            "clerk": make.clerk(place.north, username="north-clerk"),
        }
        grid = places.add_place("N1-G1", "第一网格", "grid", "N1")
        staff["grid"] = make.staff(Staff.GRID_WORKER, grid, username="north-grid")
        boss = staff["coordinator"]
        residents = [make.resident(place.north, f"居民{i}", grid_label="第一网格") for i in range(3)]
        activity = make.activity(boss, place.north, capacity=5, starts_at=make.future(days=1))
        for resident in residents:
            make.activities.join(resident, activity)
        Activity.update(starts_at=make.future(days=-1), ends_at=make.future(days=-1, hours=2)).where(
            Activity.id == activity.id).execute()
        shopper = residents[2]
        for _ in range(3):
            confirm_participation(boss, report_deed(boss, shopper, "volunteering", "值守"))
        soap = create_goods(boss, place.north, "肥皂", "Soap", 100)
        receive_stock(boss, soap, 10)
        code = codes.find_qr_code(codes.issue_qr_code(shopper, app.config["SECRET_KEY"]), app.config["SECRET_KEY"])
        redemption = checkout(staff["clerk"], code, [(soap.id, 1)], checkout_key="world")
        signup = Signup.get((Signup.activity == activity.id) & (Signup.resident == residents[0].id))
        case = cases.report(residents[1], "facilities", "楼道灯坏了",
                            photos=[cases.keep_photo(residents[1], make.photo_bytes())])
        mediators = [mediation.appoint(boss, place.north, resident=make.resident(place.north, f"调解员{i}"))
                     for i in range(2)]
        dispute = mediation.open_mediation(boss, place.north, "楼上漏水", ["张三", "李四"], [m.id for m in mediators])
    values = {
        "activity_id": activity.id, "signup_id": signup.id, "resident_id": residents[0].id,
        "community_id": place.north.id, "goods_id": soap.id, "redemption_id": redemption.id,
        "what": "transfers", "filename": "linli.css", "staff_id": staff["clerk"].id, "code": "E1",
        "case_id": case.id, "photo_id": case.photos[0].id, "mediation_id": dispute.id, "seat_id": dispute.seats[0].id,
    }
    return {"place": place, "staff": staff, "residents": residents, "activity": activity, "values": values}


def url_for_rule(app, rule, values):
    with app.test_request_context():
        return app.url_map.bind("localhost").build(rule.endpoint, {k: values[k] for k in rule.arguments})


def outcome_matches(expected, response, endpoint):
    if expected == LOGIN:
        return response.status_code == 302 and response.location.startswith("/login")
    if expected == OK:
        if response.status_code == 302:
            return endpoint == "auth.logout" or not response.location.startswith("/login")
        return response.status_code == 200
    return response.status_code == expected


@pytest.mark.parametrize("role", ROLES)
def test_the_role_matrix(app, client, world, role):
    """Each role on every route and method, with a valid CSRF token: the status in EXPECTED."""
    browser = Browser(client)
    if role != "anonymous":
        browser.login(world["staff"][role].username)
    browser.get("/login")
    token = browser.token()  # every request below is made by hand, most to routes no page of the role shows
    # Reading first, then changing; logging out last, as it ends the session.
    order = sorted(routes(app), key=lambda r: (r[1] != "GET", r[0] == "auth.logout", r[0], r[1]))
    wrong = []
    for endpoint, method, rule in order:
        if endpoint not in EXPECTED:
            continue  # test_every_route_has_a_row_in_the_matrix names it
        expected = EXPECTED[endpoint][ROLES.index(role)]
        url = url_for_rule(app, rule, world["values"])
        data = {"csrf_token": token} if method != "GET" else None
        with client.open(url, method=method, data=data) as response:
            if not outcome_matches(expected, response, endpoint):
                wrong.append((method, url, expected, response.status_code, response.location))
    assert wrong == []


# --- CSRF --------------------------------------------------------------------------------------

WEBHOOKS = {"sms.inbound", "sms.status", "sms.android_event"}
#: Plausible values for every form field: without CSRF protection, most of these would act.
FORM = {"reason": "csrf test", "phone": "138 0013 8000", "note": "csrf", "category": "volunteering",
        "title": "CSRF", "display_name": "CSRF", "text": "CSRF", "send": "1", "points": "9",
        "confirmations_required": "1", "lang": "en", "code": "ABCDEFGH23", "kind": "receive",
        "quantity": "5", "name_zh": "肥皂", "name_en": "Soap", "price": "1", "username": "boss",
        "password": make.PASSWORD, "message": "BAL", "language": "en", "capacity": "3"}


def snapshot():
    """Every row of every table."""
    tables = sorted(ledger.db.get_tables())
    return {t: sorted(map(repr, ledger.db.execute_sql(f'SELECT * FROM "{t}"').fetchall())) for t in tables}


def test_every_state_changing_route_refuses_a_request_without_a_csrf_token(app, client, world):
    Browser(client).login("boss")
    before = snapshot()
    posts = [(e, m, r) for e, m, r in routes(app) if m != "GET" and e not in WEBHOOKS]
    assert len(posts) >= 25
    refused = []
    for endpoint, method, rule in posts:
        url = url_for_rule(app, rule, world["values"])
        response = client.open(url, method=method, data={**FORM, "confirm": str(world["values"]["signup_id"])})
        refused.append((endpoint, response.status_code))
    assert [r for r in refused if r[1] != 400] == []
    assert snapshot() == before
    assert client.get("/").status_code == 200  # still logged in: /logout was refused too


def test_a_forged_token_is_as_good_as_none(app, client, world):
    Browser(client).login("north-coord")
    signup_id = world["values"]["signup_id"]
    response = client.post(f"/awards/signups/{signup_id}/confirm", data={"csrf_token": "forged.token.value"})
    assert response.status_code == 400
    assert Signup.get_by_id(signup_id).state == Signup.SIGNED_UP


# --- who may award -----------------------------------------------------------------------------


def test_a_clerk_cannot_award_or_confirm_anything(app, client, world):
    """No page of a clerk's shows these forms: each request is made by hand, with a valid token."""
    browser = Browser(client)
    browser.login("north-clerk")
    token = browser.token()
    activity, values = world["activity"], world["values"]
    signup = values["signup_id"]
    resident = world["residents"][1]
    before = snapshot()
    attempts = [
        ("/awards/new", {"phone": resident.phone, "category": "rescue", "note": "救人"}),
        (f"/awards/signups/{signup}/confirm", {}),
        (f"/awards/signups/{signup}/reject", {"reason": "no"}),
        (f"/awards/signups/{signup}/no-show", {}),
        (f"/awards/signups/{signup}/reverse", {"reason": "no"}),
        (f"/activities/{activity.id}/confirm", {"confirm": str(signup)}),
        (f"/activities/{activity.id}/join", {"phone": resident.phone}),
        (f"/activities/{activity.id}/signups/{signup}/cancel", {}),
        (f"/activities/{activity.id}/close", {}),
        (f"/activities/{activity.id}/cancel", {"reason": "no"}),
        ("/activities/new", {"title": "x", "category": "volunteering", "capacity": "3"}),
    ]
    assert [(url, client.post(url, data={"csrf_token": token, **data}).status_code) for url, data in attempts] == [
        (url, 403) for url, _ in attempts]
    assert snapshot() == before


def test_a_coordinator_cannot_confirm_their_own_participation_in_any_way(app, client, world):
    """The single confirm button is tested in test_web_staff; here the roster and a reported deed."""
    resident = world["residents"][0]
    with app.app_context():
        make.coordinator(world["place"].north, username="neighbour", resident=resident)
    browser = Browser(client)
    browser.login("neighbour")
    activity, signup = world["activity"], world["values"]["signup_id"]
    browser.get(f"/activities/{activity.id}")
    page = browser.submit(action=f"/activities/{activity.id}/confirm", confirm=signup)
    assert "工作人员不能确认自己的参与" in page.get_data(as_text=True)
    browser.get("/awards/new")
    deed = browser.submit(has="note", phone=resident.phone, category="volunteering", note="自己")
    assert "工作人员不能确认自己的参与" in deed.get_data(as_text=True)
    assert ledger.balance(Resident.get_by_id(resident.id).account_id) == 0
    assert not Signup.select().where((Signup.resident == resident.id) & (Signup.state == Signup.CONFIRMED)).exists()


# --- the SMS webhook ---------------------------------------------------------------------------


@pytest.fixture
def sms_app(app):
    return app


def signature(url, form, token=TWILIO_TOKEN):
    return RequestValidator(token).compute_signature(url, form)


def inbound_form(body, sid=None):
    return {"MessageSid": sid or f"SM{next(_sids):032d}", "From": PHONE, "To": "+15005550006", "Body": body}


def reply_of(response):
    message = ET.fromstring(response.text).find("Message")
    return None if message is None else message.text


@pytest.fixture
def sms_resident(sms_app):
    with sms_app.app_context():
        place = make.build_place()
        return make.resident(place.north, "林阿姨", phone_number=PHONE)


def test_sms_requests_signed_for_another_url_are_refused(sms_app, sms_resident):
    """Unsigned, forged and wrong-token requests are in test_sms; here the URL a signature covers."""
    client = sms_app.test_client()
    form = inbound_form("CODE")
    for url in (BASE + "/sms/status", "http://linli.example/sms/inbound", "https://evil.example/sms/inbound",
                BASE + "/sms/inbound?extra=1", BASE + "/sms/inbound/"):
        response = client.post("/sms/inbound", data=form, headers={"X-Twilio-Signature": signature(url, form)})
        assert response.status_code == 403, url
    status = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    assert client.post("/sms/status", data=status).status_code == 403
    forged = client.post("/sms/status", data=status,
                         headers={"X-Twilio-Signature": signature(BASE + "/sms/inbound", status)})
    assert forged.status_code == 403
    assert Inbound.select().count() == 0 and CounterCode.select().count() == 0


def test_a_replayed_sms_is_answered_once(sms_app, sms_resident):
    """The same MessageSid again (Twilio's redelivery, or a replay) gets the first reply and issues
    no second counter code, which would void the one the resident is reading out."""
    client = sms_app.test_client()
    form = inbound_form("CODE", sid="SMreplayed")
    headers = {"X-Twilio-Signature": signature(BASE + "/sms/inbound", form)}
    first = client.post("/sms/inbound", data=form, headers=headers)
    again = client.post("/sms/inbound", data=form, headers=headers)
    assert first.status_code == again.status_code == 200
    assert reply_of(first) == reply_of(again)
    digits = re.search(r"\b\d{6}\b", reply_of(first)).group()
    live = CounterCode.select().where(CounterCode.resident == sms_resident.id)
    assert live.count() == 1 and live.get().code == codes.stored("digits", digits) and live.get().replaced_at is None
    assert Inbound.select().count() == 1


def test_an_sms_without_a_message_sid_is_refused(sms_app, sms_resident):
    client = sms_app.test_client()
    form = {"From": PHONE, "Body": "CODE"}
    response = client.post("/sms/inbound", data=form,
                           headers={"X-Twilio-Signature": signature(BASE + "/sms/inbound", form)})
    assert response.status_code == 400
    assert CounterCode.select().count() == 0


# --- the logs ----------------------------------------------------------------------------------

class LiveServer:
    """The app served by werkzeug in a thread, so that the real request log is written; like
    webforms.Browser, it opens pages and submits the forms they rendered."""

    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.server.server_port}")

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.client.close()
        self.server.shutdown()
        self.thread.join(timeout=10)
        self.server.server_close()

    def get(self, page):
        """Open a page (following redirects) and remember it."""
        self.page = self.client.get(page, follow_redirects=True)
        return self.page

    def submit(self, *, action=None, has=None, button=None, **filled):
        """Fill in and post one form of the current page (see webforms.Browser.submit); the answer,
        unfollowed, becomes the page."""
        form = find_form(self.page.text, action=action, has=has, button=button)
        assert form.method == "post", form
        data = {}
        for name, value in MultiDict(form.values(button=button, **filled)).items(multi=True):
            data.setdefault(name, []).append(value)
        self.page = self.client.post(urljoin(str(self.page.url), form.action), data=data)
        return self.page

    def login(self, username):
        self.get("/login")
        response = self.submit(has="password", username=username, password=make.PASSWORD)
        assert response.status_code == 302, response.text
        return response

    def logout(self):
        self.get("/")
        self.submit(action="/logout")

    def sms(self, body):
        form = inbound_form(body)
        response = self.client.post("/sms/inbound", data=form,
                                    headers={"X-Twilio-Signature": signature(BASE + "/sms/inbound", form)})
        assert response.status_code == 200
        return reply_of(response) or ""


def test_no_log_line_carries_a_phone_number_or_a_code(sms_app, every_logger_at_debug):
    caplog = every_logger_at_debug
    with sms_app.app_context():
        place = make.build_place()
        make.coordinator(place.north, username="coord")
        make.clerk(place.north, username="till")
        oil = create_goods(Staff.get(Staff.username == "coord"), place.north, "食用油", "Oil", 10)
        receive_stock(Staff.get(Staff.username == "coord"), oil, 10)
    issued = []
    with LiveServer(sms_app) as web:
        web.login("coord")
        web.get("/residents/new")
        registered = web.submit(has="display_name", display_name="林阿姨", phone="138 0013 8000",
                                community=place.north.id, language="zh_Hans")
        assert registered.status_code == 302
        for query in (NATIONAL, PHONE, "86" + NATIONAL):
            assert web.client.get("/residents/", params={"q": query}).status_code == 200
        web.get("/awards/new")
        awarded = web.submit(has="note", phone=NATIONAL, category="volunteering", note="值守")
        assert awarded.status_code == 302
        web.logout()

        for body in ("BAL", "CODE", "TELEGRAM", "BAL"):
            reply = web.sms(body)
            issued += re.findall(r"\b\d{6}\b", reply) + re.findall(r"link-([A-Za-z0-9]+)", reply)
        digits = issued[0]
        with sms_app.app_context():
            resident = Resident.get(Resident.phone == PHONE)
            qr = codes.issue_qr_code(resident, sms_app.config["SECRET_KEY"])  # what the bot sends
        issued.append(qr)
        assert len(issued) == 3, issued

        web.login("till")
        for scanned in ({"code": qr}, {"phone": "138 0013 8000", "digits": digits}):
            web.get("/counter/")
            cart = web.submit(has=next(iter(scanned)), **scanned)
            assert "林阿姨" in cart.text, cart.text
            done = web.submit(action="/counter/checkout", **{f"qty-{oil.id}": 1})
            assert done.status_code == 302 and "/receipts/" in done.headers["location"]
        web.get("/counter/")
        web.submit(has="phone", phone=NATIONAL, digits=digits)  # used: refused
        web.logout()
        # Someone typing a phone number as a username until it is locked out.
        for _ in range(throttle.USERNAME_LIMIT + 1):
            web.get("/login")
            web.submit(has="password", username=NATIONAL, password="wrong password")

    lines = log_lines(caplog)
    assert any("werkzeug" in line and "/residents/?q=" in line for line in lines)  # the request log is there
    assert any("login.lockout" in line or "logins locked" in line for line in lines)
    leaks = [line for line in lines if phone_in(line) or PHONE in line]
    leaks += [line for line in lines for code in issued if re.search(rf"(?<![0-9A-Z]){code}(?![0-9A-Z])", line)]
    assert leaks == []


def test_a_phone_number_searched_with_spaces_or_dashes_is_not_logged(app, every_logger_at_debug):
    with app.app_context():
        place = make.build_place()
        make.coordinator(place.north, username="coord")
        make.resident(place.north, "林阿姨", phone_number=PHONE)
    with LiveServer(app) as web:
        web.login("coord")
        for query in ("138 0013 8000", "138-0013-8000", "+86 138 0013 8000"):
            assert web.client.get("/residents/", params={"q": query}).status_code == 200
    lines = log_lines(every_logger_at_debug)
    assert any("/residents/?q=" in line for line in lines)
    assert [line for line in lines if phone_in(line)] == []


# --- login throttling --------------------------------------------------------------------------

THROTTLE_MESSAGE = "Too many failed logins; try again in 15 minutes."


@pytest.fixture
def staff_users(app):
    with app.app_context():
        place = make.build_place()
        return {
            "boss": make.staff(Staff.ADMIN, username="boss"),
            "coord": make.coordinator(place.north, username="coord"),
            "mallory": make.clerk(place.north, username="mallory"),
        }


def english(client):
    browser = Browser(client)
    browser.get("/login")
    browser.submit(action="/language", button="English")
    return client


WRONG_PASSWORD = "wrong password"


def attempt(client, username, password=WRONG_PASSWORD, address="127.0.0.1"):
    """The login page opened and filled in from `address`; the answer, not followed."""
    client.environ_base["REMOTE_ADDR"] = address
    browser = Browser(client)
    browser.get("/login")
    return browser.submit(has="password", username=username, password=password, follow_redirects=False)


def test_five_wrong_passwords_lock_the_username_out_even_for_the_right_one(app, client, staff_users, caplog):
    caplog.set_level(logging.DEBUG)
    english(client)
    answers = [attempt(client, "boss") for _ in range(throttle.USERNAME_LIMIT)]
    assert [a.status_code for a in answers] == [200] * (throttle.USERNAME_LIMIT - 1) + [429]
    assert "Wrong username or password." in answers[0].get_data(as_text=True)
    locked = attempt(client, "boss", make.PASSWORD)
    assert locked.status_code == 429 and locked.headers["Retry-After"] == "900"
    assert THROTTLE_MESSAGE in locked.get_data(as_text=True)
    assert client.get("/").status_code == 302  # not logged in
    # The other address is refused too: the username is what is being guessed.
    assert attempt(client, "boss", make.PASSWORD, address="10.9.8.7").status_code == 429
    # Other usernames are not.
    assert attempt(client, "coord", make.PASSWORD, address="10.9.8.7").status_code == 302
    event = AuditEvent.get(AuditEvent.action == "login.lockout")
    assert event.target == f"staff:{staff_users['boss'].id}"
    detail = json.loads(event.detail)
    assert detail["minutes"] == 15 and detail["failures"] == throttle.USERNAME_LIMIT
    assert AuditEvent.select().where(AuditEvent.action == "login.lockout").count() == 1
    everything = event.detail + "".join(r.getMessage() for r in caplog.records)
    assert "wrong password" not in everything and make.PASSWORD not in everything


def test_the_lockout_is_in_chinese_pages_too(app, client, staff_users):
    for _ in range(throttle.USERNAME_LIMIT):
        response = attempt(client, "boss")
    assert response.status_code == 429
    page = response.get_data(as_text=True)
    assert "15" in page and 'class="flash error"' in page


def test_one_address_trying_many_usernames_is_locked_out(app, client, staff_users):
    usernames = [f"guess{i}" for i in range(throttle.ADDRESS_LIMIT)]
    statuses = [attempt(client, name, address="203.0.113.9").status_code for name in usernames]
    assert statuses == [200] * (throttle.ADDRESS_LIMIT - 1) + [429]
    assert attempt(client, "coord", make.PASSWORD, address="203.0.113.9").status_code == 429
    assert attempt(client, "coord", make.PASSWORD, address="203.0.113.10").status_code == 302
    event = AuditEvent.get(AuditEvent.action == "login.lockout")
    assert event.target == "address:203.0.113.9" and event.staff_id is None


def test_a_shared_address_is_slowed_down_not_locked_out_and_can_be_lifted(app, client, staff_users):
    address = "203.0.113.20"
    for i in range(throttle.ADDRESS_LIMIT):
        attempt(client, f"guess{i}", address=address)
    with app.app_context():
        until = throttle.locked_until("anyone", address)
        assert until is not None and until - utcnow() <= throttle.ADDRESS_PAUSE  # a pause, not a lockout
    result = app.test_cli_runner().invoke(args=["unlock", "--address", address])
    assert result.exit_code == 0 and "unlocked" in result.output
    assert attempt(client, "coord", make.PASSWORD, address=address).status_code == 302
    assert app.test_cli_runner().invoke(args=["unlock"]).exit_code != 0  # a username or an address


def test_an_ipv6_subscriber_cannot_escape_by_changing_the_last_64_bits(app, client, staff_users):
    for i in range(throttle.ADDRESS_LIMIT):
        attempt(client, f"guess{i}", address=f"2001:db8:1:2::{i:x}")
    assert attempt(client, "coord", make.PASSWORD, address="2001:db8:1:2:ffff::1").status_code == 429
    assert attempt(client, "coord", make.PASSWORD, address="2001:db8:1:3::1").status_code == 302


def test_a_successful_login_does_not_reset_the_address_count_for_other_usernames(app, client, staff_users):
    address = "198.51.100.7"
    slips = throttle.USERNAME_LIMIT - 1
    guesses = ["mallory"] * 3 + ["boss", "coord", "x1", "x2"] * slips
    assert len(guesses) == throttle.ADDRESS_LIMIT - 1
    assert {attempt(client, name, address=address).status_code for name in guesses} == {200}
    # The attacker logs into their own account: their own 3 slips are forgiven, nobody else's.
    assert attempt(client, "mallory", make.PASSWORD, address=address).status_code == 302
    assert [attempt(client, f"y{i}", address=address).status_code for i in range(4)] == [200, 200, 200, 429]
    assert attempt(client, "mallory", make.PASSWORD, address=address).status_code == 429


def test_a_users_own_slips_are_forgiven_by_logging_in(app, client, staff_users):
    for _round in range(3):
        for _ in range(throttle.USERNAME_LIMIT - 1):
            assert attempt(client, "coord").status_code == 200
        assert attempt(client, "coord", make.PASSWORD).status_code == 302
        browser = Browser(client)
        browser.get("/")
        browser.logout()
    assert not LoginLockout.select().exists()


def test_failures_from_elsewhere_are_not_forgiven_by_the_users_own_login(app, client, staff_users):
    for _ in range(throttle.USERNAME_LIMIT - 1):
        attempt(client, "coord", address="192.0.2.66")
    assert attempt(client, "coord", make.PASSWORD, address="192.0.2.1").status_code == 302
    assert attempt(client, "coord", address="192.0.2.66").status_code == 429


def test_lockouts_grow_and_end(db, staff_users):
    start = utcnow()
    now = start
    lengths = []
    for _round in range(4):
        for _ in range(throttle.USERNAME_LIMIT - 1):
            with pytest.raises(BadCredentials):
                throttle.log_in("coord", "wrong", "192.0.2.1", now=now)
            now += datetime.timedelta(seconds=30)
        with pytest.raises(TooManyLogins) as locked:
            throttle.log_in("coord", "wrong", "192.0.2.1", now=now)
        lengths.append(locked.value.minutes)
        with pytest.raises(TooManyLogins):
            throttle.log_in("coord", make.PASSWORD, "192.0.2.1", now=now + datetime.timedelta(minutes=14))
        now = throttle.locked_until("coord", "192.0.2.1", now=now)
    assert lengths == [15, 30, 60, 120]
    assert throttle.log_in("coord", make.PASSWORD, "192.0.2.1", now=now).username == "coord"
    # A day later the memory is gone: the next lockout is the first again.
    later = now + throttle.MEMORY + datetime.timedelta(minutes=1)
    for _ in range(throttle.USERNAME_LIMIT - 1):
        with pytest.raises(BadCredentials):
            throttle.log_in("coord", "wrong", "192.0.2.1", now=later)
    with pytest.raises(TooManyLogins) as again:
        throttle.log_in("coord", "wrong", "192.0.2.1", now=later)
    assert again.value.minutes == 15


def test_failures_spread_beyond_the_window_do_not_lock(db, staff_users):
    now = utcnow()
    for _ in range(3 * throttle.USERNAME_LIMIT):
        with pytest.raises(BadCredentials):
            throttle.log_in("coord", "wrong", "192.0.2.1", now=now)
        now += throttle.WINDOW / (throttle.USERNAME_LIMIT - 1) + datetime.timedelta(seconds=1)
    assert throttle.log_in("coord", make.PASSWORD, "192.0.2.1", now=now).username == "coord"


def test_usernames_are_counted_whatever_their_case_width_or_spaces_and_never_stored(db, staff_users):
    for typed in ("coord", " COORD", "ｃｏｏｒｄ", "Coord ", "coord"):
        with pytest.raises((BadCredentials, TooManyLogins)):
            throttle.log_in(typed, "wrong", "192.0.2.1")
    assert throttle.locked_until("coord", "192.0.2.50") is not None
    stored = snapshot()
    assert not any("coord" in row.lower() for row in stored["login_failure"] + stored["login_lockout"])
    assert {f.username_key for f in LoginFailure.select()} == {throttle.username_key("coord")}


@pytest.mark.parametrize("username", ["\x00", "boss\x00", "\u202e", "a" * 5000, "", "   "])
def test_strange_usernames_are_failures_not_errors(db, staff_users, username):
    with pytest.raises(BadCredentials):
        throttle.log_in(username, "wrong", "192.0.2.1")


def test_two_app_instances_share_the_count(db_url, staff_users):
    first = create_app({"TESTING": True, "DATABASE_URL": db_url, "SECRET_KEY": "one"})
    second = create_app({"TESTING": True, "DATABASE_URL": db_url, "SECRET_KEY": "two"})
    a, b = first.test_client(), second.test_client()
    statuses = [attempt(client, "boss").status_code for client in (a, b, a, b, a)]
    assert statuses == [200, 200, 200, 200, 429]
    assert attempt(b, "boss", make.PASSWORD).status_code == 429
    assert attempt(a, "coord", make.PASSWORD).status_code == 302


def fail_logins_in_a_fresh_app(url, username, count):
    """In a process of its own: build the app, fail `count` logins; return the last status."""
    app = create_app({"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "elsewhere"})
    client = app.test_client()
    return [attempt(client, username).status_code for _ in range(count)][-1]


def test_processes_share_the_count(db_url, app, client, staff_users):
    ledger.db.close()
    assert race(db_url, [(fail_logins_in_a_fresh_app, (db_url, "boss", 3))]) == ["ok:200"]
    assert race(db_url, [(fail_logins_in_a_fresh_app, (db_url, "boss", 2))]) == ["ok:429"]
    assert attempt(client, "boss", make.PASSWORD).status_code == 429


def test_behind_a_trusted_proxy_the_client_address_is_the_forwarded_one(db_url):
    proxied = create_app({"DATABASE_URL": db_url, "SECRET_KEY": "k", "TESTING": True, "TRUSTED_PROXIES": 1,
                          "PUBLIC_BASE_URL": "https://linli.example"})
    seen = []
    proxied.before_request(lambda: seen.append(request.remote_addr))
    proxied.test_client().get("/login", headers={"X-Forwarded-For": "203.0.113.7"},
                              environ_base={"REMOTE_ADDR": "10.0.0.1"})
    assert seen == ["203.0.113.7"]


def test_an_operator_unlocks_a_locked_out_username(app, client, runner, staff_users):
    for _ in range(throttle.USERNAME_LIMIT):
        attempt(client, "boss")
    assert attempt(client, "boss", make.PASSWORD).status_code == 429
    result = runner.invoke(args=["unlock", "boss"])
    assert result.exit_code == 0 and "boss: unlocked" in result.output
    assert attempt(client, "boss", make.PASSWORD).status_code == 302
    assert AuditEvent.select().where(AuditEvent.action == "login.unlock").count() == 1
    assert "was not locked out" in runner.invoke(args=["unlock", "boss"]).output


def test_a_card_code_sent_while_no_sms_provider_is_set_is_not_logged(app, every_logger_at_debug):
    """Development and first days: notices go to the log channel, and a code must not."""
    with app.app_context():
        place = make.build_place()
        boss = make.coordinator(place.north)
        resident = make.resident(place.north, "林阿姨", phone_number=PHONE)
        assert cards.send_card_code(make.clerk(place.north), cards.issue_card(boss, resident, "k"))
        [notice] = Notice.select().where(Notice.kind == cards.COUNTER_CODE)
        code = json.loads(notice.params)["code"]
        asyncio.run(Worker(app.extensions["linli.dialogue"]).drain_once())
    lines = log_lines(every_logger_at_debug)
    assert any("log (channel not configured)" in line and "******" in line for line in lines)
    assert [line for line in lines if phone_in(line) or code in line] == []


# --- password and PIN hashing ------------------------------------------------------------------

#: argon2-cffi's default and what production hashes with: Argon2id, t=3, 64 MiB, p=4.
STRONG = RFC_9106_LOW_MEMORY


@pytest.mark.full_cost_hashing
def test_passwords_and_pins_are_hashed_with_argon2id_at_full_cost(app):
    """The rest of the suite hashes cheaply (tests/conftest.py); this test sees what production
    does: every password and PIN hash Argon2id at the full default cost."""
    for module in (people, staffing, cards):
        hasher = module._hasher
        assert (hasher.type, hasher.time_cost, hasher.memory_cost, hasher.parallelism) == (
            STRONG.type, STRONG.time_cost, STRONG.memory_cost, STRONG.parallelism), module.__name__
    with app.app_context():
        place = make.build_place()
        admin = make.admin()
        coordinator = make.coordinator(place.north, username="coord")
        assert extract_parameters(coordinator.password_hash) == STRONG
        one_time = staffing.reset_password(admin, coordinator)
        assert extract_parameters(Staff.get_by_id(coordinator.id).password_hash) == STRONG
        changed = staffing.change_own_password(Staff.get_by_id(coordinator.id), one_time, "lantern by the river")
        assert extract_parameters(changed.password_hash) == STRONG
        assert people.authenticate("coord", "lantern by the river").id == coordinator.id
        resident = make.resident(place.north, "王伯")
        card = cards.issue_card(coordinator, resident, "pin-secret", pin="2468")
        assert extract_parameters(card.pin_hash) == STRONG


@pytest.mark.full_cost_hashing
def test_a_hash_made_at_another_cost_still_verifies(app):
    """A hash carries its own parameters: one made at the suite's cheap cost (or at an older
    default) logs in under the production hasher, and a wrong password still fails."""
    with app.app_context():
        place = make.build_place()
        coordinator = make.coordinator(place.north, username="coord")
        cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        Staff.update(password_hash=cheap.hash(make.PASSWORD)).where(Staff.id == coordinator.id).execute()
        assert extract_parameters(Staff.get_by_id(coordinator.id).password_hash).time_cost == 1
        assert people.authenticate("coord", make.PASSWORD).id == coordinator.id
        with pytest.raises(BadCredentials):
            people.authenticate("coord", WRONG_PASSWORD)
