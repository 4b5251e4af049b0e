"""A coordinator in a real headless Chromium: log in, create an activity, sign a resident up,
confirm them, and see the balance change on the resident's page."""

import datetime
import os
import shutil
import threading

import community_factory as make
import pytest
from werkzeug.serving import make_server

from community import Activity

CHROMIUM = os.environ.get("LINLI_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
REQUIRED = os.environ.get("LINLI_REQUIRE_BROWSER") == "1"

if not os.path.exists(CHROMIUM):
    if REQUIRED:
        raise RuntimeError(f"browser tests are required but {CHROMIUM} is missing")
    pytest.skip("Debian's chromium is not installed (scripts/test installs it as root)", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def live_server(app):
    """Serve the app on a loopback port in a thread for the length of the test."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


@pytest.fixture
def page():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
        yield context.new_page()
        context.close()
        browser.close()


def test_coordinator_confirms_a_resident_and_sees_the_balance(app, live_server, page):
    with app.app_context():
        place = make.build_place()
        make.coordinator(place.north, username="coord")
        resident = make.resident(place.north, "林阿姨", phone_number="138 0013 8000")

    page.goto(f"{live_server}/login")
    page.get_by_label("用户名").fill("coord")
    page.get_by_label("密码").fill(make.PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"{live_server}/")

    page.get_by_role("button", name="新建活动").click()
    start = datetime.datetime.now() + datetime.timedelta(days=2)
    page.get_by_label("标题").fill("楼道安全检查")
    page.get_by_label("类别").select_option("volunteering")
    page.get_by_label("开始时间").fill(start.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("结束时间").fill((start + datetime.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("地点").fill("5号楼")
    page.get_by_label("名额").fill("10")
    page.get_by_role("button", name="保存").click()
    page.get_by_text("已创建").wait_for()
    activity = Activity.get(Activity.title == "楼道安全检查")
    assert page.url.endswith(f"/activities/{activity.id}")

    page.get_by_label("居民手机号").fill("13800138000")
    page.get_by_role("button", name="报名", exact=True).click()
    page.get_by_text("报名成功").wait_for()

    page.get_by_label("确认 林阿姨").check()
    page.get_by_role("button", name="确认已勾选的").click()
    page.get_by_text("已确认 1 人").wait_for()

    page.get_by_role("link", name="林阿姨").click()
    assert page.locator("#balance").inner_text() == "1"
    assert "志愿服务 v1" in page.locator("body").inner_text()
    assert resident.id and page.url.endswith(f"/residents/{resident.id}")
