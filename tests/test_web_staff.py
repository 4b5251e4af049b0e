"""The staff pages through the Flask test client: login, CSRF, roles, and the earning loop.

Each step opens the page a person would be on and submits the form it rendered (tests/webforms.py);
only the requests no page of the role offers (a missing CSRF token, another community's activity,
a clerk's award) are posted by hand.
"""

import datetime

import community_factory as make
import pytest
from webforms import Browser

import ledger
from community import Activity, AuditEvent, Resident, Signup, Staff
from community.rules import current_rule


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


def confirm_button(browser, signup):
    """The Confirm button of one sign-up on the confirmations page, and the data it sends."""
    browser.get("/awards/")
    form = browser.find(f"/awards/signups/{signup.id}/confirm")
    return form, form.values()


def confirm(browser, signup, follow_redirects=True):
    """Click Confirm for one sign-up on the confirmations page."""
    form, data = confirm_button(browser, signup)
    return browser.send(form, data, follow_redirects=follow_redirects)


# --- login and CSRF ----------------------------------------------------------------------


def test_login_page_speaks_chinese_by_default_and_english_on_request(client, world):
    browser = Browser(client)
    assert "工作人员登录" in browser.get("/login").get_data(as_text=True)
    browser.submit(action="/language", button="English")
    assert "Staff log in" in client.get("/login").get_data(as_text=True)


def test_wrong_password_is_refused_with_a_message(client, world):
    browser = Browser(client)
    browser.get("/login")
    response = browser.submit(has="password", username="boss", password="wrong password", follow_redirects=False)
    assert response.status_code == 200
    assert "用户名或密码错误" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_login_then_logout(client, world):
    browser = as_role(client, world, "coordinator")
    assert client.get("/").status_code == 200
    browser.logout()
    assert client.get("/").status_code == 302


def test_login_never_redirects_off_site(client, world):
    browser = Browser(client)
    browser.get("/login?next=//evil.example/x")
    response = browser.submit(has="password", username="boss", password=make.PASSWORD, follow_redirects=False)
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
    # No page of north's coordinator shows south's activity: the post is made by hand.
    response = client.post(f"/activities/{south.id}/cancel", data={"csrf_token": browser.token(), "reason": "x"})
    assert response.status_code == 403
    assert Activity.get_by_id(south.id).status == Activity.OPEN


def test_a_clerk_cannot_award(client, world, app):
    browser = as_role(client, world, "clerk")
    signup = Signup.get(Signup.resident == world["residents"][0].id)
    assert client.get("/awards/").status_code == 403  # no Confirm button to click: the post is made by hand
    assert client.post(f"/awards/signups/{signup.id}/confirm", data={"csrf_token": browser.token()}).status_code == 403
    assert balance_of(app, world["residents"][0]) == 0


# --- the earning loop -----------------------------------------------------------------------


def test_confirming_posts_the_rules_points_once_however_often_it_is_clicked(client, world, app):
    browser = as_role(client, world, "coordinator")
    resident = world["residents"][0]
    signup = Signup.get(Signup.resident == resident.id)
    form, data = confirm_button(browser, signup)
    for _ in range(3):  # the same button clicked again before the page changes
        response = browser.send(form, data, follow_redirects=False)
        assert response.status_code == 302
    assert balance_of(app, resident) == current_rule("volunteering").points == 100
    assert Signup.get_by_id(signup.id).state == Signup.CONFIRMED
    page = client.get(f"/residents/{resident.id}").get_data(as_text=True)
    assert 'id="balance">1<' in page
    title = Signup.get_by_id(signup.id).activity.title
    assert f"<td>志愿服务 {title}</td>" in page and "志愿服务: 1 分" in page and "volunteering" not in page


def test_bulk_confirm_with_a_reject_reason(client, world, app):
    browser = as_role(client, world, "coordinator")
    activity = world["activity"]
    first, second, third = world["residents"]
    signups = {s.resident_id: s.id for s in Signup.select().where(Signup.activity == activity.id)}
    browser.get(f"/activities/{activity.id}")
    response = browser.submit(
        action=f"/activities/{activity.id}/confirm",
        confirm=[signups[first.id], signups[second.id]],
        **{f"reject__{signups[second.id]}": "没有到场"},
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
    confirm(browser, signup)
    assert balance_of(app, resident) == 100
    reverse = f"/awards/signups/{signup.id}/reverse"
    assert f'href="{reverse}"' in browser.get(f"/residents/{resident.id}").get_data(as_text=True)
    browser.get(reverse)
    empty = browser.submit(has="reason", reason="", follow_redirects=False)
    assert empty.status_code == 200 and balance_of(app, resident) == 100
    browser.submit(has="reason", reason="记错人了")
    assert balance_of(app, resident) == 0
    page = client.get(f"/residents/{resident.id}").get_data(as_text=True)
    assert "撤销" in page and "记错人了" in page
    browser.get(reverse)  # the page opened again, from the history or a second tab
    again = browser.submit(has="reason", reason="again")
    assert "只有已确认的积分才能撤销" in again.get_data(as_text=True)
    assert balance_of(app, resident) == 0


def test_a_rescue_needs_two_coordinators(client, world, app):
    resident = world["residents"][1]
    first = as_role(client, world, "coordinator")
    first.get("/awards/new")
    first.submit(has="note", phone=resident.phone, category="rescue", note="救起落水儿童")
    assert balance_of(app, resident) == 0
    deed = Signup.get((Signup.resident == resident.id) & Signup.activity.is_null())
    again = confirm(first, deed)
    assert "需要另一位工作人员确认" in again.get_data(as_text=True)
    first.logout()
    second = as_role(client, world, "coordinator2")
    confirm(second, deed)
    assert balance_of(app, resident) == 300


def test_creating_an_activity_through_the_form(client, world):
    browser = as_role(client, world, "coordinator")
    start = datetime.datetime.now() + datetime.timedelta(days=3)
    form = {"title": "楼道清洁", "community": world["place"].north.id, "category": "volunteering",
            "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
            "ends_at": (start + datetime.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
            "place": "3号楼", "capacity": "10", "description": "", "title_en": "Stairwell sweep"}
    browser.get("/activities/new")
    bad = browser.submit(has="title", follow_redirects=False, **{**form, "ends_at": form["starts_at"]})
    assert bad.status_code == 200
    assert "部分信息缺失或无效" in bad.get_data(as_text=True)
    response = browser.submit(has="title", follow_redirects=False, **form)
    assert response.status_code == 302
    created = Activity.get(Activity.title == "楼道清洁")
    assert created.capacity == 10 and created.code.startswith("A")
    assert created.title_for("en") == "Stairwell sweep" and created.title_for("zh_Hans") == "楼道清洁"
    assert AuditEvent.select().where(AuditEvent.action == "activity.create").count() >= 1


def test_registering_a_resident_normalises_the_phone_and_refuses_bad_ones(client, world):
    browser = as_role(client, world, "coordinator")
    form = {"display_name": "陈阿婆", "phone": "138 0013 8000", "community": world["place"].north.id,
            "language": "zh_Hans", "grid_label": "", "unit_label": ""}
    browser.get("/residents/new")
    bad = browser.submit(has="display_name", **{**form, "phone": "12345"})
    assert "手机号无效" in bad.get_data(as_text=True)
    assert browser.submit(has="display_name", follow_redirects=False, **form).status_code == 302
    assert Resident.get(Resident.display_name == "陈阿婆").phone == "+8613800138000"
    browser.get("/residents/")
    listing = browser.submit(has="q", q="陈阿婆").get_data(as_text=True)
    assert "138****8000" in listing and "+86" not in listing and "13800138000" not in listing


def test_an_admin_changes_a_rule_and_only_later_confirmations_use_it(client, world, app):
    coordinator = as_role(client, world, "coordinator")
    first, second = world["residents"][:2]
    confirm(coordinator, Signup.get(Signup.resident == first.id))
    coordinator.logout()
    admin = as_role(client, world, "admin")
    admin.get("/rules")
    admin.submit(has="points", category="volunteering", points="1.5", confirmations_required="1")
    assert current_rule("volunteering").version == 2
    confirm(admin, Signup.get(Signup.resident == second.id))
    assert balance_of(app, first) == 100
    assert balance_of(app, second) == 150
    assert "v2" in client.get("/rules").get_data(as_text=True)
    audit = client.get("/audit").get_data(as_text=True).split("<tbody>")[1]  # the events, not the filter
    assert "把“志愿服务”设为 1.5 积分（第 2 版）" in audit and "rule.set" not in audit and "{&#34;" not in audit


def test_an_admin_adds_a_category_in_chinese_only_and_the_activity_form_offers_it(client, world, app):
    admin = as_role(client, world, "admin")
    page = admin.get("/rules").get_data(as_text=True)
    assert "(rescue)" not in page and "新类别" in page
    refused = admin.submit(has="points", category="", points="0.8").get_data(as_text=True)
    assert "新类别需要中文名称" in refused
    admin.submit(has="points", category="", points="0.8", name_zh="扶老助残")
    rule = current_rule("fu_lao_zhu_can")
    assert (rule.points, rule.name_zh, rule.name_en) == (80, "扶老助残", "")
    admin.logout()
    coordinator = as_role(client, world, "coordinator")
    coordinator.get("/activities/new")
    category = next(f for f in coordinator.find(has="title").fields if f.name == "category")
    assert ("fu_lao_zhu_can", "扶老助残") in {(value, label) for value, label, _ in category.options}


def test_a_staff_member_cannot_confirm_their_own_participation(client, world, app):
    resident = world["residents"][2]
    with app.app_context():
        make.coordinator(world["place"].north, username="neighbour-coord", resident=resident)
    browser = Browser(client)
    browser.login("neighbour-coord")
    response = confirm(browser, Signup.get(Signup.resident == resident.id))
    assert "工作人员不能确认自己的参与" in response.get_data(as_text=True)
    assert balance_of(app, resident) == 0


def test_closing_sign_ups_keeps_confirmation_possible(client, world, app):
    browser = as_role(client, world, "coordinator")
    activity = world["activity"]
    browser.get(f"/activities/{activity.id}")
    close = browser.find(f"/activities/{activity.id}/close")
    data = close.values()
    browser.send(close, data)
    assert Activity.get_by_id(activity.id).status == Activity.CLOSED
    assert f'action="/activities/{activity.id}/close"' not in browser.html  # the button is gone...
    again = browser.send(close, data)  # ...but was clicked twice
    assert "这个活动未开放" in again.get_data(as_text=True)
    confirm(browser, Signup.get(Signup.resident == world["residents"][0].id))
    assert balance_of(app, world["residents"][0]) == 100
