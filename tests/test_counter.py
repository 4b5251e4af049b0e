"""The counter page through the test client: scan, cart, confirm, and every refusal in words —
with the clerk kept on the cart, every quantity as typed, and the code still usable."""

import community_factory as make
import pytest
from webforms import Browser

import ledger
from catalog import cards, codes
from catalog.goods import adjust_stock, create_goods, receive_stock
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
        create_goods(boss, place.north, "酱油", "Soy sauce", 100)  # never delivered: sold out
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
    assert "林阿姨" in page and "138****8000" in page and "+86" not in page and ">3</strong>" in page
    assert "13800138000" not in page
    assert 'id="total">0<' in page and 'id="after">3<' in page
    response, (form, data) = fill_cart(browser, [(oil, 1), (soap, 1)])
    assert ">0.5</strong>" in response.get_data(as_text=True)
    assert balance(resident) == 50 and Goods.get_by_id(oil.id).stock == 2
    again = browser.send(form, data)  # the same form sent again (a double click, a retry)
    assert Redemption.select().count() == 1 and ">0.5</strong>" in again.get_data(as_text=True)


def test_sold_out_goods_are_shown_but_cannot_be_chosen(client, app, shop):
    resident, oil, soap = shop
    browser = Browser(client)
    browser.login("till")
    page = scan(browser, code=qr(app, resident)).get_data(as_text=True)
    assert "酱油" in page and "已售完" in page
    sauce = Goods.get(Goods.name_zh == "酱油")
    form = browser.find("/counter/checkout")
    [field] = [f for f in form.fields if f.name == f"qty-{sauce.id}"]
    assert field.disabled
    with pytest.raises(AssertionError, match="disabled"):
        form.values(**{f"qty-{sauce.id}": "1"})


def test_phone_and_sms_code_without_a_qr_code(client, app, shop):
    resident, oil, soap = shop
    with app.app_context():
        digits = codes.issue_digit_code(Resident.get_by_id(resident.id))
    browser = Browser(client)
    browser.login("till")
    wrong = f"{(int(digits) + 1) % 10**6:06d}"
    page = scan(browser, phone="138 0013 8000", digits=wrong).get_data(as_text=True)
    assert "还可以再试 4 次" in page
    form = browser.find(has="phone")
    assert dict(form.values())["phone"] == "138 0013 8000"  # the number stays; only the code is typed again
    browser.submit(has="phone", digits=digits)
    response, _ = fill_cart(browser, [(soap, 2)])
    assert ">1</strong>" in response.get_data(as_text=True) and balance(resident) == 100


@pytest.mark.parametrize("case, message", [
    ("over limit", "超过了这位居民本期可兑换的数量"),
    ("too poor", "积分不足"),
    ("out of stock", "库存不足"),
])
def test_a_refusal_keeps_the_cart_and_the_code_stays_usable(client, app, shop, case, message):
    resident, oil, soap = shop
    browser = Browser(client)
    browser.login("till")
    before = balance(resident)
    cart = {"over limit": [(oil, 2)], "too poor": [(soap, 4)], "out of stock": [(soap, 3)]}[case]
    scan(browser, code=qr(app, resident))
    if case == "out of stock":  # someone else takes the last soap between the scan and the confirm
        with app.app_context():
            boss = Staff.get(Staff.role == Staff.COORDINATOR)
            adjust_stock(boss, Goods.get_by_id(soap.id), -8, "破损")
    response, _ = fill_cart(browser, cart)
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and message in page and "林阿姨" in page
    assert balance(resident) == before and Redemption.select().count() == 0
    form = browser.find("/counter/checkout")
    kept = dict(form.values())
    for goods, n in cart:
        assert kept[f"qty-{goods.id}"] == str(n)
    if case != "too poor":
        marked = oil if case == "over limit" else soap
        assert f'name="qty-{marked.id}"' in page.split('class="refused"')[1].split("</tr>")[0]
    fixed = {"over limit": [(oil, 1), (soap, 1)], "too poor": [(soap, 3)], "out of stock": [(soap, 2)]}[case]
    done, _ = fill_cart(browser, fixed)  # the same code, on the same cart
    assert "完成" in done.get_data(as_text=True) and Redemption.select().count() == 1


def test_a_code_refused_at_the_confirm_is_typed_again_on_the_cart(client, app, shop):
    resident, oil, soap = shop
    browser = Browser(client)
    browser.login("till")
    scan(browser, code=qr(app, resident))
    newer = qr(app, resident)  # the resident asked for a new code meanwhile
    response, _ = fill_cart(browser, [(soap, 2)])
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "新的兑换码" in page and balance(resident) == 300
    form = browser.find("/counter/checkout")
    assert dict(form.values())[f"qty-{soap.id}"] == "2"
    done = browser.send(form, form.values(code=newer))
    assert "完成" in done.get_data(as_text=True) and balance(resident) == 100


@pytest.mark.parametrize("case, message", [
    ("used", "这个兑换码已经用过了"),
    ("typo", "兑换码无效，请检查是否输错"),
    ("other community", "这位居民属于另一个社区的积分超市"),
])
def test_refusals_at_the_scan_are_specific_and_change_nothing(client, app, shop, case, message):
    resident, oil, soap = shop
    browser = Browser(client)
    code = qr(app, resident)
    if case == "used":
        browser.login("till")
        buy(browser, [(soap, 1)], code=code)
    browser.login("south-till" if case == "other community" else "till")
    before = balance(resident)
    scanned = code[:-1] + ("2" if code[-1] != "2" else "3") if case == "typo" else code
    page = scan(browser, code=scanned).get_data(as_text=True)
    assert message in page and 'id="balance"' not in page
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
    app.config["SMS_PROVIDER"] = "twilio"  # an SMS provider is set up
    card = card_of(app, resident)
    browser = Browser(client)
    browser.login("till")
    page = scan(browser, code=card).get_data(as_text=True)
    assert "已通过短信发送到 138****8000" in page and 'id="balance"' not in page
    [digits] = sent_digits(resident)
    assert digits not in page
    wrong = f"{(int(digits) + 1) % 10**6:06d}"
    again = browser.submit(has="digits", digits=wrong).get_data(as_text=True)
    assert "还可以再试 4 次" in again
    assert sent_digits(resident) == [digits]  # a typo does not send another code
    browser.submit(has="digits", digits=digits)
    response, _ = fill_cart(browser, [(soap, 1)])
    assert ">2</strong>" in response.get_data(as_text=True) and balance(resident) == 200


def test_a_card_scan_says_so_when_no_sms_or_telegram_is_set_up(client, app, shop):
    resident, oil, soap = shop
    card = card_of(app, resident)
    browser = Browser(client)
    browser.login("till")
    page = scan(browser, code=card).get_data(as_text=True)
    assert "没有设置短信或 Telegram 服务" in page and "已通过短信发送" not in page


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


def test_a_clerk_sees_their_checkouts_today_and_reopens_the_last_receipt(client, app, shop):
    resident, oil, soap = shop
    browser = Browser(client)
    browser.login("till")
    receipt, _ = buy(browser, [(soap, 1)], code=qr(app, resident))
    receipt_url = receipt.request.path
    assert 'name="code"' in receipt.get_data(as_text=True)  # the next scan starts from the receipt
    buy(browser, [(oil, 1)], code=qr(app, resident))
    page = browser.get("/counter/").get_data(as_text=True)
    assert "今天我办理的兑换：2" in page
    last = Redemption.select().order_by(Redemption.id.desc()).first()
    assert f'href="/counter/receipts/{last.id}" id="last-receipt"' in page
    listing = browser.get("/counter/checkouts").get_data(as_text=True)
    assert "肥皂 × 1" in listing and "食用油 × 1" in listing and receipt_url in listing
    browser.login("south-till")
    assert "今天我办理的兑换：0" in browser.get("/counter/").get_data(as_text=True)
    assert "林阿姨" not in browser.get("/counter/checkouts").get_data(as_text=True)


def test_a_coordinator_voids_a_checkout_with_a_reason(client, app, shop):
    resident, oil, soap = shop
    browser = Browser(client)
    browser.login("till")
    response, _ = buy(browser, [(soap, 2)], code=qr(app, resident))
    receipt_url = response.request.path
    assert "撤销这笔兑换" not in response.get_data(as_text=True)  # clerks see no void form

    with app.app_context():
        boss = Staff.get(Staff.role == Staff.COORDINATOR)
    browser.login(boss.username)
    assert "林阿姨" in browser.get("/counter/checkouts").get_data(as_text=True)
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
    assert client.post(receipt_url + "/void", data={**token, "reason": "x"}).status_code == 403


def test_another_communitys_counter_is_refused_at_the_scan(client, app, shop):
    resident, oil, soap = shop
    browser = Browser(client)
    browser.login("south-till")
    text = scan(browser, code=qr(app, resident)).get_data(as_text=True)
    assert "这位居民属于另一个社区的积分超市" in text and "林阿姨" not in text and 'id="balance"' not in text
