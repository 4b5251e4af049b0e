"""The staff pages through the Flask test client: login, CSRF, roles, and the earning loop."""

import datetime
import re

import community_factory as make
import pytest

import ledger
from community import Activity, AuditEvent, Resident, Signup, Staff
from community.rules import current_rule

TOKEN = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')


class Browser:
    """A test client that logs in and sends each form with the page's CSRF token."""

    def __init__(self, client):
        self.client = client

    def token(self, page="/login"):
        return TOKEN.search(self.client.get(page).get_data(as_text=True)).group(1)

    def post(self, url, data=None, page="/login", **kwargs):
        return self.client.post(url, data={"csrf_token": self.token(page), **(data or {})}, **kwargs)

    def login(self, username, password=make.PASSWORD):
        response = self.post("/login", {"username": username, "password": password})
        assert response.status_code == 302, response.get_data(as_text=True)
        return response


@pytest.fixture
def world(app):
    """A district with staff of every role and residents, built through the services."""
    with app.app_context():
        place = make.build_place()
        people = {
            "admin": make.staff(Staff.ADMIN, username="boss"),
            "coordinator": make.coordinator(place.north, username="north-coord"),
            "coordinator2": make.coordinator(place.north, username="north-coord2"),
            "clerk": make.clerk(place.north, username="north-clerk"),
            "south": make.coordinator(place.south, username="south-coord"),
        }
        residents = [make.resident(place.north, f"居民{i}") for i in range(3)]
        started = make.activity(people["coordinator"], place.north, capacity=5,
                                starts_at=make.future(days=1))
        for r in residents:
            make.activities.join(r, started)
        # Move the activity into the past through its own update: it has now taken place.
        Activity.update(starts_at=make.future(days=-1), ends_at=make.future(days=-1, hours=2)).where(
            Activity.id == started.id).execute()
        south_activity = make.activity(people["south"], place.south)
    return {"place": place, "staff": people, "residents": residents, "activity": started,
            "south_activity": south_activity}


def as_role(client, world, role):
    browser = Browser(client)
    browser.login(world["staff"][role].username)
    return browser


def balance_of(app, resident):
    with app.app_context():
        return ledger.balance(Resident.get_by_id(resident.id).account_id)


# --- login and CSRF ----------------------------------------------------------------------


def test_login_page_speaks_chinese_by_default_and_english_on_request(client, world):
    page = client.get("/login").get_data(as_text=True)
    assert "工作人员登录" in page
    browser = Browser(client)
    browser.post("/language", {"lang": "en", "next": "/login"})
    assert "Staff log in" in client.get("/login").get_data(as_text=True)


def test_wrong_password_is_refused_with_a_message(client, world):
    response = Browser(client).post("/login", {"username": "boss", "password": "wrong password"})
    assert response.status_code == 200
    assert "用户名或密码错误" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_login_then_logout(client, world):
    browser = as_role(client, world, "coordinator")
    assert client.get("/").status_code == 200
    browser.post("/logout", page="/")
    assert client.get("/").status_code == 302


def test_login_never_redirects_off_site(client, world):
    response = Browser(client).post("/login?next=//evil.example/x", {"username": "boss", "password": make.PASSWORD})
    assert response.location == "/"


def test_a_post_without_csrf_token_is_refused_and_changes_nothing(client, world, app):
    as_role(client, world, "coordinator")
    signup = Signup.get(Signup.resident == world["residents"][0].id)
    response = client.post(f"/awards/signups/{signup.id}/confirm")
    assert response.status_code == 400
    assert balance_of(app, world["residents"][0]) == 0
    assert client.post("/login", data={"username": "boss", "password": make.PASSWORD}).status_code == 400


# --- roles ---------------------------------------------------------------------------------

COORDINATOR_PAGES = ["/activities/", "/activities/new", "/awards/", "/awards/new", "/residents/",
                     "/residents/new"]
ADMIN_PAGES = ["/rules", "/audit"]


@pytest.mark.parametrize("role, allowed", [
    ("admin", COORDINATOR_PAGES + ADMIN_PAGES),
    ("coordinator", COORDINATOR_PAGES),
    ("clerk", []),
])
def test_role_matrix(client, world, role, allowed):
    as_role(client, world, role)
    pages = COORDINATOR_PAGES + ADMIN_PAGES + [
        f"/activities/{world['activity'].id}", f"/residents/{world['residents'][0].id}",
    ]
    for page in pages:
        expected = 200 if page in allowed or (page not in COORDINATOR_PAGES + ADMIN_PAGES and role != "clerk") else 403
        assert client.get(page).status_code == expected, (role, page)
    assert client.get("/").status_code == 200


def test_anonymous_visitors_are_sent_to_login(client, world):
    for page in COORDINATOR_PAGES + ADMIN_PAGES + ["/"]:
        response = client.get(page)
        assert response.status_code == 302 and "/login" in response.location, page


def test_a_coordinator_cannot_see_or_act_in_another_community(client, world):
    browser = as_role(client, world, "coordinator")
    south = world["south_activity"]
    assert client.get(f"/activities/{south.id}").status_code == 403
    response = browser.post(f"/activities/{south.id}/cancel", {"reason": "x"}, page="/")
    assert response.status_code == 403
    assert Activity.get_by_id(south.id).status == Activity.OPEN


def test_a_clerk_cannot_award(client, world, app):
    browser = as_role(client, world, "clerk")
    signup = Signup.get(Signup.resident == world["residents"][0].id)
    assert browser.post(f"/awards/signups/{signup.id}/confirm", page="/").status_code == 403
    assert balance_of(app, world["residents"][0]) == 0


# --- the earning loop -----------------------------------------------------------------------


def test_confirming_posts_the_rules_points_once_however_often_it_is_clicked(client, world, app):
    browser = as_role(client, world, "coordinator")
    resident = world["residents"][0]
    signup = Signup.get(Signup.resident == resident.id)
    for _ in range(3):
        response = browser.post(f"/awards/signups/{signup.id}/confirm", page="/")
        assert response.status_code == 302
    assert balance_of(app, resident) == current_rule("volunteering").points == 100
    assert Signup.get_by_id(signup.id).state == Signup.CONFIRMED
    page = client.get(f"/residents/{resident.id}").get_data(as_text=True)
    assert 'id="balance">1<' in page
    assert "志愿服务 v1" in page


def test_bulk_confirm_with_a_reject_reason(client, world, app):
    browser = as_role(client, world, "coordinator")
    activity = world["activity"]
    first, second, third = world["residents"]
    signups = {s.resident_id: s.id for s in Signup.select().where(Signup.activity == activity.id)}
    response = browser.post(
        f"/activities/{activity.id}/confirm",
        {"confirm": [str(signups[first.id]), str(signups[second.id])],
         f"reject-{signups[second.id]}": "没有到场"},
        page=f"/activities/{activity.id}",
        follow_redirects=True,
    )
    assert "已确认 1 人，已驳回 1 人" in response.get_data(as_text=True)
    assert balance_of(app, first) == 100
    assert balance_of(app, second) == 0
    assert Signup.get_by_id(signups[second.id]).reason == "没有到场"
    assert Signup.get_by_id(signups[third.id]).state == Signup.SIGNED_UP


def test_a_reversal_takes_the_points_back_and_shows_in_the_passbook(client, world, app):
    browser = as_role(client, world, "coordinator")
    resident = world["residents"][0]
    signup = Signup.get(Signup.resident == resident.id)
    browser.post(f"/awards/signups/{signup.id}/confirm", page="/")
    assert balance_of(app, resident) == 100
    empty = browser.post(f"/awards/signups/{signup.id}/reverse", {"reason": ""}, page="/")
    assert empty.status_code == 200 and balance_of(app, resident) == 100
    browser.post(f"/awards/signups/{signup.id}/reverse", {"reason": "记错人了"}, page="/")
    assert balance_of(app, resident) == 0
    page = client.get(f"/residents/{resident.id}").get_data(as_text=True)
    assert "冲正" in page and "记错人了" in page
    again = browser.post(f"/awards/signups/{signup.id}/reverse", {"reason": "again"}, page="/",
                         follow_redirects=True)
    assert "只有已确认的积分才能冲正" in again.get_data(as_text=True)
    assert balance_of(app, resident) == 0


def test_a_rescue_needs_two_coordinators(client, world, app):
    resident = world["residents"][1]
    first = as_role(client, world, "coordinator")
    first.post("/awards/new", {"phone": resident.phone, "category": "rescue", "note": "救起落水儿童"},
               page="/awards/new")
    assert balance_of(app, resident) == 0
    deed = Signup.get((Signup.resident == resident.id) & Signup.activity.is_null())
    again = first.post(f"/awards/signups/{deed.id}/confirm", page="/", follow_redirects=True)
    assert "需要另一位工作人员确认" in again.get_data(as_text=True)
    first.post("/logout", page="/")
    second = as_role(client, world, "coordinator2")
    second.post(f"/awards/signups/{deed.id}/confirm", page="/")
    assert balance_of(app, resident) == 300


def test_creating_an_activity_through_the_form(client, world):
    browser = as_role(client, world, "coordinator")
    start = datetime.datetime.now() + datetime.timedelta(days=3)
    form = {"title": "楼道清洁", "community": str(world["place"].north.id), "category": "volunteering",
            "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
            "ends_at": (start + datetime.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
            "place": "3号楼", "capacity": "10", "description": ""}
    bad = browser.post("/activities/new", {**form, "ends_at": form["starts_at"]}, page="/activities/new")
    assert bad.status_code == 200
    assert "部分信息缺失或无效" in bad.get_data(as_text=True)
    response = browser.post("/activities/new", form, page="/activities/new")
    assert response.status_code == 302
    created = Activity.get(Activity.title == "楼道清洁")
    assert created.capacity == 10 and created.code.startswith("A")
    assert AuditEvent.select().where(AuditEvent.action == "activity.create").count() >= 1


def test_registering_a_resident_normalises_the_phone_and_refuses_bad_ones(client, world):
    browser = as_role(client, world, "coordinator")
    form = {"display_name": "陈阿婆", "phone": "138 0013 8000", "community": str(world["place"].north.id),
            "language": "zh_Hans", "grid_label": "", "unit_label": ""}
    bad = browser.post("/residents/new", {**form, "phone": "12345"}, page="/residents/new")
    assert "手机号无效" in bad.get_data(as_text=True)
    assert browser.post("/residents/new", form, page="/residents/new").status_code == 302
    assert Resident.get(Resident.display_name == "陈阿婆").phone == "+8613800138000"
    listing = client.get("/residents/?q=陈阿婆").get_data(as_text=True)
    assert "+86138****8000" in listing and "13800138000" not in listing


def test_an_admin_changes_a_rule_and_only_later_confirmations_use_it(client, world, app):
    coordinator = as_role(client, world, "coordinator")
    first, second = world["residents"][:2]
    signup_1 = Signup.get(Signup.resident == first.id)
    coordinator.post(f"/awards/signups/{signup_1.id}/confirm", page="/")
    coordinator.post("/logout", page="/")
    admin = as_role(client, world, "admin")
    admin.post("/rules", {"category": "volunteering", "points": "1.5", "confirmations_required": "1"},
               page="/rules")
    assert current_rule("volunteering").version == 2
    signup_2 = Signup.get(Signup.resident == second.id)
    admin.post(f"/awards/signups/{signup_2.id}/confirm", page="/")
    assert balance_of(app, first) == 100
    assert balance_of(app, second) == 150
    assert "v2" in client.get("/rules").get_data(as_text=True)
    assert "rule.set" in client.get("/audit").get_data(as_text=True)


def test_a_staff_member_cannot_confirm_their_own_participation(client, world, app):
    resident = world["residents"][2]
    with app.app_context():
        make.coordinator(world["place"].north, username="neighbour-coord", resident=resident)
    browser = Browser(client)
    browser.login("neighbour-coord")
    signup = Signup.get(Signup.resident == resident.id)
    response = browser.post(f"/awards/signups/{signup.id}/confirm", page="/", follow_redirects=True)
    assert "工作人员不能确认自己的参与" in response.get_data(as_text=True)
    assert balance_of(app, resident) == 0


def test_closing_sign_ups_keeps_confirmation_possible(client, world, app):
    browser = as_role(client, world, "coordinator")
    activity = world["activity"]
    browser.post(f"/activities/{activity.id}/close", page="/")
    assert Activity.get_by_id(activity.id).status == Activity.CLOSED
    again = browser.post(f"/activities/{activity.id}/close", page="/", follow_redirects=True)
    assert "这个活动未开放" in again.get_data(as_text=True)
    signup = Signup.get(Signup.resident == world["residents"][0].id)
    browser.post(f"/awards/signups/{signup.id}/confirm", page="/")
    assert balance_of(app, world["residents"][0]) == 100
