"""Staff in a real headless Chromium: a coordinator creates an activity, signs a resident up,
confirms them and sees the balance change; a clerk checks a resident out at the counter with a
keyboard-wedge scanner and with the page's camera scanner (fed a fake camera stream of a QR code)."""

import contextlib
import datetime
import os
import re
import shutil
import threading
import time

import community_factory as make
import pytest
import qrcode
from PIL import Image
from senders import RecordingSender, deliver
from werkzeug.serving import make_server

import ledger
from botapp.dialogue import SMS
from catalog import cards, codes
from catalog.goods import create_goods, receive_stock
from catalog.models import Goods
from community import Activity, Case, Staff, cases, places
from community.awards import confirm_participation, report_deed

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


ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def playwright():
    with sync_api.sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def browser(playwright):
    """One headless Chromium for the module's tests; each test has a context of its own, with its
    own cookies, storage and cache, as a fresh browser profile would."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    yield browser
    browser.close()


@contextlib.contextmanager
def new_page(browser, permissions=()):
    """A page in a fresh context of `browser` (a phone-sized window, Chinese locale)."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN",
                                  permissions=list(permissions))
    yield context.new_page()
    context.close()


@pytest.fixture
def page(browser):
    with new_page(browser) as page:
        yield page


def log_in(page, live_server, username):
    page.goto(f"{live_server}/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(make.PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"{live_server}/")


def test_coordinator_confirms_a_resident_and_sees_the_balance(app, live_server, page):
    with app.app_context():
        place = make.build_place()
        make.coordinator(place.north, username="coord")
        resident = make.resident(place.north, "林阿姨", phone_number="138 0013 8000")

    log_in(page, live_server, "coord")
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

    page.get_by_label("居民：姓名、楼栋单元、手机号或积分卡").fill("13800138000")
    page.get_by_role("button", name="报名", exact=True).click()
    page.get_by_text("报名成功").wait_for()
    assert page.locator("#not-started").is_visible() and page.get_by_label("确认 林阿姨").count() == 0

    make.begin(activity)  # the day of the activity: who took part can now be confirmed
    page.reload()
    page.get_by_label("确认 林阿姨").check()
    page.get_by_role("button", name="确认已勾选的").click()
    page.get_by_text("已确认 1 人").wait_for()

    page.get_by_role("link", name="林阿姨").click()
    assert page.locator("#balance").inner_text() == "1"
    body = page.locator("body").inner_text()
    assert "志愿服务 楼道安全检查" in body and "v1" not in body and "volunteering" not in body
    assert resident.id and page.url.endswith(f"/residents/{resident.id}")


@pytest.fixture
def shop(app):
    """A clerk at the north counter, a resident with 3 points, soap at 1 point."""
    with app.app_context():
        place = make.build_place()
        boss = make.coordinator(place.north)
        make.clerk(place.north, username="till")
        resident = make.resident(place.north, "林阿姨", phone_number="138 0013 8000")
        for _ in range(3):
            confirm_participation(boss, report_deed(boss, resident, "volunteering", "值守"))
        soap = create_goods(boss, place.north, "肥皂", "Soap", 100)
        receive_stock(boss, soap, 10)
        code = codes.issue_qr_code(resident, app.config["SECRET_KEY"])
    return resident, soap, code


def buy_one_soap(page, soap):
    page.get_by_role("heading", name="林阿姨").wait_for()
    assert page.locator("#balance").inner_text() == "3"
    page.get_by_label("数量 肥皂").fill("1")
    page.get_by_role("button", name="确认并扣积分").click()
    page.get_by_role("heading", name="完成").wait_for()
    assert page.locator("#balance").inner_text() == "2"
    assert Goods.get_by_id(soap.id).stock == 9


def test_a_clerk_checks_out_with_a_keyboard_wedge_scanner(app, live_server, page, shop):
    resident, soap, code = shop
    log_in(page, live_server, "till")
    page.goto(f"{live_server}/counter/")
    # The scan field has the focus on its own: the scanner types straight into it, then Enter.
    assert wait_for_focus(page, "code", timeout=30)
    page.keyboard.type(code.lower(), delay=5)  # Caps Lock off: lower case still works
    page.keyboard.press("Enter")
    buy_one_soap(page, soap)


def y4m_of_qr_code(text, path, width=640, height=480):
    """A short raw video (YUV4MPEG2, 4:2:0) of a QR code on white, for Chromium's fake camera."""
    image = qrcode.make(text, box_size=8, border=4).convert("L")
    frame = Image.new("L", (width, height), 255)
    frame.paste(image, ((width - image.width) // 2, (height - image.height) // 2))
    chroma = bytes([128]) * (width // 2 * height // 2 * 2)
    with open(path, "wb") as video:
        video.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(10):
            video.write(b"FRAME\n" + frame.tobytes() + chroma)
    return path


def test_a_clerk_checks_out_with_the_camera_scanner(app, live_server, playwright, shop, tmp_path):
    resident, soap, code = shop
    video = y4m_of_qr_code(code, tmp_path / "qr.y4m")
    camera = playwright.chromium.launch(executable_path=CHROMIUM, args=[
        *ARGS, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={video}"])
    try:
        with new_page(camera, permissions=["camera"]) as page:
            log_in(page, live_server, "till")
            page.goto(f"{live_server}/counter/")
            page.get_by_role("button", name="用摄像头扫码").click()
            buy_one_soap(page, soap)
    finally:
        camera.close()


FOCUSED = "document.activeElement && (document.activeElement.name || document.activeElement.id)"


def wait_for_focus(page, name, timeout=5.0):
    """Wait until the field named (or with the id) `name` has the focus; return whether it came.

    Polled from here: Playwright's wait_for_function compiles its predicate with eval in the page
    once it has to wait, which the pages' Content-Security-Policy (no unsafe-eval) refuses."""
    deadline = time.monotonic() + timeout
    while page.evaluate(FOCUSED) != name:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def focused(page, expected=None):
    """The name (or id) of the field with the focus; with `expected`, wait a moment for it (the
    browser gives autofocus after the page has loaded, which on a slow run comes a little later)."""
    if expected is not None:
        wait_for_focus(page, expected)
    return page.evaluate(FOCUSED)


def typed_into(page, name, text):
    """Type as a person (or a scanner) does, into the field that has the focus once it has it."""
    assert wait_for_focus(page, name, timeout=30), f"{name} never had the focus"
    page.keyboard.type(text, delay=5)
    page.keyboard.press("Enter")


def test_the_register_keeps_the_cart_on_a_refusal_and_enter_never_checks_out(app, live_server, page, shop):
    resident, soap, code = shop
    log_in(page, live_server, "till")
    page.goto(f"{live_server}/counter/")
    typed_into(page, "code", code)
    page.get_by_role("heading", name="林阿姨").wait_for()
    assert focused(page, f"qty-{soap.id}") == f"qty-{soap.id}"  # after the scan: the first quantity
    page.keyboard.type("4")
    assert page.locator("#total").inner_text() == "4" and page.locator("#after").inner_text() == "-1"
    page.keyboard.press("Enter")  # Enter in a quantity moves on; it never checks out
    assert page.url.endswith("/counter/scan") and Goods.get_by_id(soap.id).stock == 10
    assert page.get_by_role("button", name="确认并扣积分").is_visible()
    page.get_by_role("button", name="确认并扣积分").click()
    page.get_by_text("积分不足").wait_for()  # refused: still on the cart, the 4 still typed
    assert page.get_by_label("数量 肥皂").input_value() == "4"
    page.get_by_label("数量 肥皂").fill("2")
    page.get_by_role("button", name="确认并扣积分").click()
    page.get_by_role("heading", name="完成").wait_for()
    assert page.locator("#balance").inner_text() == "1"
    assert focused(page, "code") == "code"  # the receipt is ready for the next scan


def test_the_confirm_button_is_in_view_at_1366_by_768_with_a_long_shelf(app, live_server, page, shop):
    resident, soap, code = shop
    with app.app_context():
        boss = make.coordinator(resident.community)
        for n in range(14):
            receive_stock(boss, create_goods(boss, resident.community, f"商品{n:02d}", "", 100), 5)
    page.set_viewport_size({"width": 1366, "height": 768})
    log_in(page, live_server, "till")
    page.goto(f"{live_server}/counter/")
    typed_into(page, "code", code)
    page.get_by_role("heading", name="林阿姨").wait_for()
    assert focused(page, "goods-filter") == "goods-filter"  # a long shelf: the filter first
    button = page.get_by_role("button", name="确认并扣积分")
    box = button.bounding_box()
    assert box and box["y"] + box["height"] <= 768
    page.keyboard.type("肥皂")
    assert page.locator("tbody tr:visible").count() == 1


def test_a_member_card_and_a_pin_card_check_out_end_to_end(app, live_server, page, shop):
    resident, soap, code = shop
    app.config["SMS_PROVIDER"] = "twilio"  # an SMS provider is set up
    with app.app_context():
        boss = make.coordinator(resident.community)
        card = cards.issue_card(boss, resident, app.config["SECRET_KEY"]).code
        elder = make.people.register_resident(resident.community, "王伯")  # no phone at all
        confirm_participation(boss, report_deed(boss, elder, "volunteering", "看车棚"))
        pin_card = cards.issue_card(boss, elder, app.config["SECRET_KEY"], pin="8642").code
    log_in(page, live_server, "till")
    page.goto(f"{live_server}/counter/")
    typed_into(page, "code", card)
    page.get_by_text("已通过短信发送到").wait_for()
    [(_, sent)] = make.notices_of(resident, cards.COUNTER_CODE)
    typed_into(page, "digits", sent["code"])
    buy_one_soap(page, soap)

    typed_into(page, "code", pin_card)  # straight from the receipt
    page.get_by_text("请居民输入密码").wait_for()
    typed_into(page, "pin", "8642")
    page.get_by_role("heading", name="王伯", exact=True).wait_for()
    page.get_by_label("数量 肥皂").fill("1")
    page.get_by_role("button", name="确认并扣积分").click()
    page.get_by_role("heading", name="完成").wait_for()
    assert page.locator("#balance").inner_text() == "0" and Goods.get_by_id(soap.id).stock == 8


def test_the_a6_card_prints_on_an_a6_page(app, live_server, page, shop, tmp_path):
    resident, soap, code = shop
    with app.app_context():
        boss = make.coordinator(resident.community, username="printer")
        cards.issue_card(boss, resident, app.config["SECRET_KEY"])
    log_in(page, live_server, "printer")
    page.goto(f"{live_server}/cards/residents/{resident.id}")
    pdf = page.pdf(prefer_css_page_size=True)
    sizes = [tuple(round(float(v) / 72 * 25.4) for v in box.split()[2:4])
             for box in re.findall(rb"/MediaBox\s*\[([^\]]+)\]", pdf)]
    assert sizes and all(size == (105, 148) for size in sizes), sizes


def test_the_residents_list_reads_on_a_phone(app, live_server, page, tmp_path):
    with app.app_context():
        place = make.build_place()
        make.coordinator(place.north, username="coord")
        for n, name in enumerate(("欧阳秀英", "陈桂兰", "王伯")):
            make.resident(place.north, name, unit_label=f"{n + 2}号楼1单元")
    log_in(page, live_server, "coord")
    page.goto(f"{live_server}/residents/")
    page.screenshot(path=str(os.environ.get("LINLI_SCREENSHOTS", tmp_path)) + "/residents-390.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing runs off the screen
    names = page.locator("td[data-label='姓名']")
    assert names.count() == 3
    for cell in names.all():
        box, text = cell.bounding_box(), cell.inner_text()
        line = page.evaluate("(el) => parseFloat(getComputedStyle(el).lineHeight) || 24", cell.element_handle())
        assert box["height"] < 2 * line, f"{text!r} wraps onto several lines"


def test_goods_and_reports_fit_a_phone_and_the_menu_folds(app, live_server, page, shop):
    with app.app_context():
        make.coordinator(Goods.get_by_id(shop[1].id).community, username="desk")
    log_in(page, live_server, "desk")
    menu = page.get_by_role("link", name="商品")
    assert not menu.is_visible()  # folded behind the menu button
    page.get_by_text("菜单").click()
    menu.click()
    page.wait_for_url(f"{live_server}/goods/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.goto(f"{live_server}/reports/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    chart = page.locator("#points-chart").bounding_box()
    assert chart["x"] + chart["width"] <= 390  # the latest week is on screen


def test_the_first_day_in_chromium_from_an_empty_database_to_a_confirmed_deed(app, live_server, page, tmp_path):
    """An admin builds the tree and adds staff; a coordinator imports a GBK sheet; a grid worker
    registers a resident and reports a deed; the coordinator confirms it; the balance shows."""
    from community import Staff
    from community.rules import install_default_rules

    with app.app_context():
        install_default_rules()
        make.staff(Staff.ADMIN, username="root")
    log_in(page, live_server, "root")
    assert page.locator("#first-steps").is_visible()

    def add_place(level, code, name, parent=""):
        page.goto(f"{live_server}/places/")
        adding = page.locator("form", has=page.get_by_role("button", name="添加", exact=True))
        adding.get_by_label("层级").select_option(level)
        if parent:
            adding.get_by_label("上级").select_option(parent)
        adding.get_by_label("编码（网格中心给的）").fill(code)
        adding.get_by_label("中文名称").fill(name)
        adding.get_by_role("button", name="添加", exact=True).click()
        page.get_by_text(f"已添加 {name}").wait_for()

    for level, code, name, parent in (("district", "LC", "荔城区", ""), ("street", "ZH", "镇海街道", "LC"),
                                      ("community", "DM", "东梅社区", "ZH"), ("grid", "DM-G1", "第一网格", "DM")):
        add_place(level, code, name, parent)
    passwords = {}
    for username, role, place in (("dm-coord", "coordinator", "DM"), ("dm-grid1", "grid_worker", "DM-G1")):
        page.goto(f"{live_server}/staff/")
        adding = page.locator("form", has=page.get_by_role("button", name="添加（生成一次性密码）"))
        adding.get_by_label("用户名").fill(username)
        adding.locator("select[name=role]").select_option(role)
        adding.locator("select[name=community]").select_option(place)
        adding.get_by_role("button", name="添加（生成一次性密码）").click()
        passwords[username] = page.locator("#one-time-password code").inner_text()
    page.context.clear_cookies()  # the next person at the same browser

    def first_login(username):
        page.goto(f"{live_server}/login")
        page.get_by_label("用户名").fill(username)
        page.get_by_label("密码").fill(passwords[username])
        page.get_by_role("button", name="登录").click()
        page.get_by_label("当前密码").fill(passwords[username])
        page.get_by_label("新密码（至少 10 个字符）").fill("桂花 开了 2026")
        page.get_by_label("再输一次新密码").fill("桂花 开了 2026")
        page.get_by_role("button", name="保存").click()
        page.get_by_text("密码已修改").wait_for()

    first_login("dm-coord")
    sheet = tmp_path / "居民.csv"
    sheet.write_bytes("姓名,手机号,社区,网格,单元\n陈桂兰,138 0013 8000,东梅社区,第一网格,3号楼1单元\n".encode("gbk"))
    page.goto(f"{live_server}/residents/import")
    page.get_by_label("CSV 文件").set_input_files(str(sheet))
    page.get_by_role("button", name="检查表格").click()
    page.get_by_role("button", name="导入 1 位居民").click()
    page.get_by_text("导入完成").wait_for()
    page.context.clear_cookies()  # the next person at the same browser

    first_login("dm-grid1")
    page.goto(f"{live_server}/awards/new?phone=13800138000")
    page.get_by_label("类别").select_option("volunteering")
    page.get_by_label("事由").fill("帮邻居搬米")
    page.get_by_role("button", name="上报", exact=True).click()
    page.get_by_text("协调员确认后才记积分").wait_for()
    page.context.clear_cookies()  # the next person at the same browser

    page.goto(f"{live_server}/login")
    page.get_by_label("用户名").fill("dm-coord")
    page.get_by_label("密码").fill("桂花 开了 2026")
    page.get_by_role("button", name="登录").click()
    page.goto(f"{live_server}/awards/")
    page.get_by_role("button", name=re.compile("确认")).first.click()
    page.goto(f"{live_server}/residents/?q=陈桂兰")
    page.get_by_role("link", name="陈桂兰").click()
    assert page.locator("#balance").inner_text() == "1"


def test_a_grid_worker_takes_a_case_to_closed_and_the_reporter_answers_1(app, live_server, page):
    """事事有回音 in Chromium: the report by SMS, the grid worker's pages, the reporter's 1, the
    points and the closing notice."""
    dialogue, phone = app.extensions["linli.dialogue"], RecordingSender()

    with app.app_context():
        place = make.build_place()
        make.staff(Staff.GRID_WORKER, places.add_place("N1-G1", "一网格", "grid", "N1"), username="grid-wang")
        resident = make.resident(place.north, "陈桂兰", phone_number="+8613800138000", grid_label="一网格")
        dialogue.handle(SMS, resident.phone, "反映 3号楼楼道灯坏了")
        dialogue.handle(SMS, resident.phone, "3")
        number = Case.select().get().id
    log_in(page, live_server, "grid-wang")
    page.locator("label.menu-button").click()  # the menu folds on a phone
    page.get_by_role("link", name="反映", exact=True).click()
    page.get_by_role("link", name=str(number)).click()
    page.get_by_role("button", name="受理").click()
    page.wait_for_selector("text=办理中")
    page.get_by_label("处理情况、退回原因，或之前事项的编号").fill("换了新灯泡")
    page.get_by_role("button", name="已处理，请反映人确认").click()
    page.wait_for_selector("text=等反映人确认")
    deliver(app, phone)
    assert "解决了吗？回复1已解决，2未解决" in phone.texts[-1][1]
    with app.app_context():
        thanked = dialogue.handle(SMS, resident.phone, "1").full_text()  # one SMS: the reply
        assert "已办结" in thanked and "积分+0.2" in thanked
        assert ledger.balance(resident.account_id) == cases.BY_CODE["facilities"].points
    page.reload()
    page.wait_for_selector("text=确认已解决，办结")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
