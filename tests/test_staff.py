"""Running the staff, through the pages an admin uses and the `flask staff` commands: adding someone
with a one-time password, disabling a leaver, resetting a forgotten password, changing a role,
everyone's own password, and sessions that end when they should."""

import re

import community_factory as make
import pytest
from webforms import Browser

from community import AuditEvent, Staff, staffing
from community.errors import LastAdmin, NotYourself, PasswordIsUsername, PasswordTooCommon, PasswordTooShort

STRONG = "桂花 开了 2026"


@pytest.fixture
def office(app):
    with app.app_context():
        place = make.build_place()
        make.staff(Staff.ADMIN, username="boss")
        make.clerk(place.north, username="till")
    return place


def one_time_password(page):
    found = re.search(r'id="one-time-password".*?<code>([^<]+)</code>', page, re.S)
    assert found, "the page shows no one-time password"
    return found.group(1)


def test_an_admin_adds_a_colleague_who_chooses_their_own_password(app, client, office):
    admin = Browser(client)
    admin.login("boss")
    admin.get("/staff/")
    page = admin.submit(has="username", username="dm-coord2", display_name="陈主任", role="coordinator",
                        community=office.north.code).get_data(as_text=True)
    password = one_time_password(page)
    assert "陈主任" in page and "协调员" in page
    assert password not in admin.get("/staff/").get_data(as_text=True)  # shown once only
    admin.logout()

    colleague = Browser(client)
    colleague.login("dm-coord2", password)
    assert colleague.url == "/staff/password"  # a one-time password: their own one first
    assert colleague.get("/residents/").request.path == "/staff/password"
    for weak, why in (("short", "至少要 10"), ("dm-coord2", "至少要 10"), ("1234567890", "太常见"),
                      ("dm-coord2 ", "不能和用户名一样")):
        refused = colleague.submit(has="new", current=password, new=weak, again=weak).get_data(as_text=True)
        assert why in refused, weak
    assert "当前密码" in colleague.submit(has="new", current="wrong", new=STRONG, again=STRONG).get_data(as_text=True)
    colleague.submit(has="new", current=password, new=STRONG, again=STRONG)
    assert colleague.url == "/" and colleague.get("/residents/").status_code == 200
    colleague.logout()
    Browser(client).login("dm-coord2", STRONG)
    with app.app_context():
        actions = [e.action for e in AuditEvent.select().order_by(AuditEvent.id)]
        assert "staff.create" in actions and "staff.own_password" in actions


def test_a_leaver_is_disabled_at_once_and_enabling_revives_no_old_session(app, client, office):
    clerk_client = app.test_client()
    clerk = Browser(clerk_client)
    clerk.login("till")
    assert clerk.get("/counter/").request.path == "/counter/"
    admin = Browser(client)
    admin.login("boss")
    admin.get("/staff/")
    with app.app_context():
        till = Staff.get(Staff.username == "till")
    admin.submit(action=f"/staff/{till.id}/active", button="停用")
    assert "till 已停用" in admin.response.get_data(as_text=True)
    assert clerk.get("/counter/").request.path == "/login"  # the open session ended
    with pytest.raises(AssertionError):
        Browser(app.test_client()).login("till")
    admin.get("/staff/")
    admin.submit(action=f"/staff/{till.id}/active", button="启用")
    assert clerk.get("/counter/").request.path == "/login"  # the old cookie stays dead
    Browser(app.test_client()).login("till")


def test_the_last_admin_stays_and_nobody_disables_themselves(app, office):
    with app.app_context():
        boss = Staff.get(Staff.username == "boss")
        with pytest.raises(NotYourself):
            staffing.set_active(boss, boss, False)
        with pytest.raises(LastAdmin):
            staffing.set_active(None, boss, False)
        with pytest.raises(LastAdmin):
            staffing.change_role(None, boss, Staff.COORDINATOR, "N1")
        second = make.staff(Staff.ADMIN, username="boss2")
        assert not staffing.set_active(second, boss, False).active
        with pytest.raises(PasswordTooShort):
            staffing.check_password("short")
        with pytest.raises(PasswordIsUsername):
            staffing.check_password("boss2-longer", "BOSS2-longer")
        with pytest.raises(PasswordTooCommon):
            staffing.check_password("aaaaaaaaaaaa")


def test_a_reset_password_ends_sessions_and_is_changed_at_the_next_login(app, client, office):
    old = Browser(app.test_client())
    old.login("till")
    admin = Browser(client)
    admin.login("boss")
    admin.get("/staff/")
    with app.app_context():
        till = Staff.get(Staff.username == "till")
    password = one_time_password(admin.submit(action=f"/staff/{till.id}/password").get_data(as_text=True))
    assert old.get("/counter/").request.path == "/login"
    fresh = Browser(app.test_client())
    fresh.login("till", password)
    assert fresh.url == "/staff/password"


def test_an_admin_changes_a_role_and_community(app, client, office):
    admin = Browser(client)
    admin.login("boss")
    admin.get("/staff/")
    with app.app_context():
        till = Staff.get(Staff.username == "till")
    form = admin.find(action=f"/staff/{till.id}/role")
    admin.send(form, form.values(**{f"s{till.id}__role": "coordinator", f"s{till.id}__community": "S1"}))
    with app.app_context():
        till = Staff.get(Staff.username == "till")
        assert (till.role, till.community.code) == ("coordinator", "S1")
    audit = admin.get("/audit").get_data(as_text=True)
    assert "把工作人员 till 设为协调员 S1" in audit


def test_a_copied_cookie_is_dead_after_logout(app, client, office):
    browser = Browser(client)
    browser.login("till")
    copy = app.test_client()
    for cookie in client._cookies.values():
        copy.set_cookie(cookie.key, cookie.value, domain=cookie.domain)
    assert copy.get("/counter/").status_code == 200
    browser.logout()
    assert copy.get("/counter/").status_code == 302


def test_the_staff_commands(app, office):
    runner = app.test_cli_runner()
    made = runner.invoke(args=["create-staff", "gc-clerk", "--role", "clerk", "--community", "S1", "--generate",
                               "--display-name", "王会计"])
    assert made.exit_code == 0, made.output
    listing = runner.invoke(args=["staff", "list"]).output
    assert "gc-clerk\t王会计\tclerk\tS1\tnever\tactive" in listing
    assert runner.invoke(args=["staff", "disable", "gc-clerk"]).exit_code == 0
    assert "disabled" in runner.invoke(args=["staff", "list"]).output
    assert runner.invoke(args=["staff", "enable", "gc-clerk"]).exit_code == 0
    reset = runner.invoke(args=["staff", "reset-password", "gc-clerk"])
    assert reset.exit_code == 0 and "one-time password for gc-clerk: " in reset.output
    assert runner.invoke(args=["staff", "disable", "nobody"]).exit_code != 0
    assert runner.invoke(args=["staff", "disable", "boss"]).exit_code != 0  # the last admin
    with app.app_context():
        assert Staff.get(Staff.username == "gc-clerk").must_change_password
