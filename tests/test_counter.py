"""The counter page through the test client: scan, cart, confirm, and every refusal in words."""

import community_factory as make
import pytest
from webforms import Browser

import ledger
from catalog import cards, codes
from catalog.goods import create_goods, receive_stock
from catalog.models import Goods, Redemption
from community.awards import confirm_participation, report_deed
from community.models import Resident, Staff

PHONE = "+8613800138000"


@pytest.fixture
def shop(app):
    with app.app_context():
        place = make.build_place()
        boss = make.coordinator(place.north)
        make.clerk(place.north, username="till")
        make.clerk(place.south, username="south-till")
        resident = make.resident(place.north, "林阿姨", phone_number=PHONE)
        for _ in range(3):
            confirm_participation(boss, report_deed(boss, resident, "volunteering", "值守"))
        oil = create_goods(boss, place.north, "食用油", "Cooking oil", 150, limit_quantity=1, limit_period="month")
        soap = create_goods(boss, place.north, "肥皂", "Soap", 100)
        receive_stock(boss, oil, 3)
        receive_stock(boss, soap, 10)
    return resident, oil, soap


def qr(app, resident):
    with app.app_context():
        return codes.issue_qr_code(Resident.get_by_id(resident.id), app.config["SECRET_KEY"])


def balance(resident):
    return ledger.balance(Resident.get_by_id(resident.id).account_id)


def scan(browser, code=None, phone=None, digits=None):
    """At the counter: scan a code, or type a phone number and the six digits."""
    browser.get("/counter/")
    if code is not None:
        return browser.submit(has="code", code=code)
    return browser.submit(has="phone", phone=phone, digits=digits)


def fill_cart(browser, cart):
    """On the cart page: type the quantities and confirm; return the receipt and what was sent."""
    form = browser.find("/counter/checkout")
    data = form.values(**{f"qty-{g.id}": str(n) for g, n in cart})
    return browser.send(form, data), (form, data)


def buy(browser, cart, **scanned):
    scan(browser, **scanned)
    return fill_cart(browser, cart)


def test_a_clerk_scans_fills_a_cart_and_sees_the_new_balance(client, app, shop):
    resident, oil, soap = shop
    browser = Browser(client)
    browser.login("till")
    code = qr(app, resident)
    page = scan(browser, code=code.lower()).get_data(as_text=True)
    assert "林阿姨" in page and "+86138****8000" in page and 'id="balance">3<' in page
    assert "13800138000" not in page
    response, (form, data) = fill_cart(browser, [(oil, 1), (soap, 1)])
    assert 'id="balance">0.5<' in response.get_data(as_text=True)
    assert balance(resident) == 50 and Goods.get_by_id(oil.id).stock == 2
    again = browser.send(form, data)  # the same form sent again (a double click, a retry)
    assert Redemption.select().count() == 1 and 'id="balance">0.5<' in again.get_data(as_text=True)


def test_phone_and_sms_code_without_a_qr_code(client, app, shop):
    resident, oil, soap = shop
    with app.app_context():
        digits = codes.issue_digit_code(Resident.get_by_id(resident.id))
    browser = Browser(client)
    browser.login("till")
    response, _ = buy(browser, [(soap, 2)], phone="138 0013 8000", digits=digits)
    assert 'id="balance">1<' in response.get_data(as_text=True)


@pytest.mark.parametrize("case, message", [
    ("used", "这个兑换码已经用过了"),
    ("typo", "兑换码无效，请检查是否输错"),
    ("other community", "这位居民属于另一个社区的积分超市"),
    ("over limit", "超过了这位居民本期可兑换的数量"),
    ("too poor", "积分不足"),
])
def test_refusals_are_specific_and_change_nothing(client, app, shop, case, message):
    resident, oil, soap = shop
    browser = Browser(client)
    browser.login("south-till" if case == "other community" else "till")
    code = qr(app, resident)
    if case == "used":
        browser.login("till")
        buy(browser, [(soap, 1)], code=code)
    before = balance(resident)
    scanned = code[:-1] + ("2" if code[-1] != "2" else "3") if case == "typo" else code
    cart = {"over limit": [(oil, 2)], "too poor": [(soap, 4)]}.get(case, [(soap, 1)])
    response = scan(browser, code=scanned)
    if case not in ("used", "typo", "other community"):
        response, _ = fill_cart(browser, cart)
    assert message in response.get_data(as_text=True)
    assert balance(resident) == before


def test_coordinators_of_other_pages_only_and_anonymous_cannot_reach_the_counter(client, shop):
    assert client.get("/counter/").status_code == 302
    browser = Browser(client)
    browser.login("till")
    assert client.get("/counter/").status_code == 200
    assert client.get("/activities/").status_code == 403


def card_of(app, resident):
    with app.app_context():
        boss = Staff.get(Staff.role == Staff.COORDINATOR)
        return cards.issue_card(boss, Resident.get_by_id(resident.id), app.config["SECRET_KEY"]).code


def sent_digits(resident):
    return [p["code"] for _, p in make.notices_of(resident, cards.COUNTER_CODE)]


def test_a_card_scan_texts_a_code_the_resident_reads_out(client, app, shop):
    resident, oil, soap = shop
    card = card_of(app, resident)
    browser = Browser(client)
    browser.login("till")
    page = scan(browser, code=card).get_data(as_text=True)
    assert "+86138****8000" in page and 'id="balance"' not in page
    [digits] = sent_digits(resident)
    assert digits not in page
    wrong = f"{(int(digits) + 1) % 10**6:06d}"
    again = browser.submit(has="digits", digits=wrong).get_data(as_text=True)
    assert "没有这个兑换码" in again
    assert sent_digits(resident) == [digits]  # a typo does not send another code
    browser.submit(has="digits", digits=digits)
    response, _ = fill_cart(browser, [(soap, 1)])
    assert 'id="balance">2<' in response.get_data(as_text=True) and balance(resident) == 200


def test_a_reissued_card_and_an_unreachable_holder_are_told_apart(client, app, shop):
    resident, oil, soap = shop
    old = card_of(app, resident)
    card_of(app, resident)
    with app.app_context():
        boss = Staff.get(Staff.role == Staff.COORDINATOR)
        silent = make.people.register_resident(Resident.get_by_id(resident.id).community, "王伯")  # no phone
        silent_card = cards.issue_card(boss, silent, app.config["SECRET_KEY"]).code
    browser = Browser(client)
    browser.login("till")
    page = scan(browser, code=old)
    assert "这张卡已换新" in page.get_data(as_text=True)
    page = scan(browser, code=silent_card)
    assert "收不到验证码" in page.get_data(as_text=True)
    assert sent_digits(resident) == [] and sent_digits(silent) == []


def test_a_coordinator_voids_a_checkout_with_a_reason(client, app, shop):
    resident, oil, soap = shop
    browser = Browser(client)
    browser.login("till")
    response, _ = buy(browser, [(soap, 2)], code=qr(app, resident))
    receipt_url = response.request.path
    assert "撤销这笔兑换" not in response.get_data(as_text=True)  # clerks see no void form
    assert client.get("/counter/checkouts").status_code == 403

    with app.app_context():
        boss = Staff.get(Staff.role == Staff.COORDINATOR)
    browser.login(boss.username)
    assert "林阿姨" in client.get("/counter/checkouts").get_data(as_text=True)
    browser.get(receipt_url)
    void = browser.find(has="reason")
    refused = browser.send(void, void.values(reason=""))
    assert "请填写原因" in refused.get_data(as_text=True) and balance(resident) == 100
    done = browser.send(void, void.values(reason="拿错了"))
    assert "拿错了" in done.get_data(as_text=True) and balance(resident) == 300
    assert Goods.get_by_id(soap.id).stock == 10 and ledger.verify().ok
    twice = browser.send(void, void.values(reason="again"))  # the form of the page before the void
    assert "已经撤销过了" in twice.get_data(as_text=True) and balance(resident) == 300

    browser.login("till")  # a clerk who posts to the void address anyway is refused
    browser.get(receipt_url)
    token = browser.find(action="/logout").values()
    assert client.post(receipt_url + "/void", data={**dict(token), "reason": "x"}).status_code == 403


def test_another_communitys_counter_is_refused_at_the_scan(client, app, shop):
    resident, oil, soap = shop
    browser = Browser(client)
    browser.login("south-till")
    text = scan(browser, code=qr(app, resident)).get_data(as_text=True)
    assert "这位居民属于另一个社区的积分超市" in text and "林阿姨" not in text and 'id="balance"' not in text
