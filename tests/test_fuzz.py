"""Property tests of what staff type and scan: the staff forms, the resident CSV import and the
counter's scan field never answer 500 or show a traceback, and leave the data whole.

Each fuzzed request starts from the form its page rendered (the action, the CSRF token and the other
hidden fields, the field names) with the fuzzed values written over its fields, whatever they are.

SMS bodies and Telegram texts are fuzzed in tests/test_sms.py, tests/test_dialogue.py and
tests/test_telegram.py.
"""

import csv
import io
import re
import string

import community_factory as make
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from webforms import Browser

import ledger
from catalog import cards, codes
from catalog.checkout import checkout
from catalog.goods import create_goods, receive_stock
from catalog.models import CounterCode, Goods, Redemption, StockMovement
from community import Activity, AuditEvent, Notice, Resident, Staff
from community.awards import confirm_participation, report_deed
from community.notices import ANNOUNCEMENT
from ledger import Account

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
NASTY = [
    "", " ", "\x00", "a\x00b", "\r\n", "\t", "\u202e", "\u200b", "\ufeff", "\ud7ff", "😀" * 30, "ｌｉｎｌｉ", "１２３",
    "٣٤", "𝟙𝟚", "Ⅻ", "'; DROP TABLE resident; --", "\" OR 1=1 --", "%s%s%(x)s", "{{ 7*7 }}",
    "<script>alert(1)</script>", "../../etc/passwd", "NaN", "inf", "-0", "1e309", "9" * 40, "-1",
    "=HYPERLINK(\"x\")", "a" * 5000, "中" * 301,
]
texts = st.one_of(
    st.text(max_size=120),
    st.text(alphabet=st.characters(categories=["Cc", "Cf", "Zs", "Zl", "Mn", "So", "Lo", "Nd", "No"]),
            max_size=60),
    st.sampled_from(NASTY),
)
#: For the fields where PostgreSQL turns a NUL into a server error (test_a_nul_is_never_a_server_error).
texts_without_nul = texts.map(lambda text: text.replace("\x00", ""))
numbers = st.one_of(st.integers(min_value=-10**20, max_value=10**20).map(str), texts)
#: For the counter's quantities, without digits int() cannot read (test_a_superscript_quantity_is_not_a_500).
quantities = numbers.map(lambda text: "".join(c for c in text if c.isdecimal() or not c.isdigit()))
times = st.one_of(
    st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M")),
    st.sampled_from(["0001-01-01T00:00", "9999-12-31T23:59", "2030-02-30T10:00", "2030-01-01T24:00",
                     "２０３０-０１-０１T10:00"]),
    texts,
)


@pytest.fixture
def shop(app):
    """North with a coordinator, a clerk, a resident with 5 points, and goods on the shelf."""
    with app.app_context():
        place = make.build_place()
        boss = make.coordinator(place.north, username="coord")
        make.clerk(place.north, username="till")
        resident = make.resident(place.north, "林阿姨", phone_number="+8613800138000")
        for _ in range(5):
            confirm_participation(boss, report_deed(boss, resident, "volunteering", "值守"))
        soap = create_goods(boss, place.north, "肥皂", "Soap", 100)
        receive_stock(boss, soap, 50)
    return {"place": place, "resident": resident, "soap": soap}


@pytest.fixture
def member_card(app, shop):
    """The resident's member card, to reach the counter's card and code form."""
    with app.app_context():
        boss = Staff.get(Staff.username == "coord")
        return cards.issue_card(boss, Resident.get_by_id(shop["resident"].id), app.config["SECRET_KEY"]).code


class Session:
    """A logged-in staff member whose forms are sent with fuzzed values."""

    def __init__(self, app, username):
        self.client = app.test_client()
        self.browser = Browser(self.client)
        self.browser.login(username)
        self.csrf = self.browser.token()

    def send(self, page, values, *, action=None, has=None, button=None, extra=None):
        """Open `page`, take its one form that matches (see webforms.find_form) and send it with
        `values` written over its fields (`extra`: fields it does not have); the answer, unfollowed."""
        self.browser.get(page)
        return self.send_form(self.browser.find(action, has=has, button=button), values, button=button, extra=extra)

    def send_form(self, form, values, button=None, extra=None):
        """Send a form of the current page with `values` written over its fields."""
        return self.browser.send(form, form.forged(values, button=button, extra=extra), follow_redirects=False)

    def post(self, url, data):
        """A request no page renders a form for, with the CSRF token the first page rendered."""
        return self.client.post(url, data={**data, "csrf_token": self.csrf})

    def cart(self, code):
        """Scan a real code at the counter: the cart page's checkout form."""
        self.browser.get("/counter/")
        page = self.browser.submit(has="code", code=code)
        assert page.status_code == 200 and "checkout_key" in self.browser.html, self.browser.html
        return self.browser.find("/counter/checkout")


def assert_answered(response):
    """An answer a person can read: never a server error, never a traceback."""
    body = response.get_data(as_text=True)
    assert response.status_code < 500, body[:2000]
    assert "Traceback" not in body and 'File "' not in body


def assert_whole():
    """The ledger verifies, and nothing is half-written."""
    report = ledger.verify()
    assert report.ok, report.problems
    # A resident and their account are created together or not at all.
    assert Account.select().where(Account.kind == Account.RESIDENT).count() == Resident.select().count()
    events = {action: AuditEvent.select().where(AuditEvent.action == action).count()
              for action in ("activity.create", "goods.create", "resident.register")}
    assert Activity.select().count() == events["activity.create"]
    assert Goods.select().count() == events["goods.create"]
    announced = sum(int(re.search(r'"to": (\d+)', e.detail).group(1))
                    for e in AuditEvent.select().where(AuditEvent.action == "announcement.send"))
    assert Notice.select().where(Notice.kind == ANNOUNCEMENT).count() == announced
    # Stock is only ever what its recorded movements add up to.
    for goods in Goods.select():
        moved = sum(m.quantity for m in StockMovement.select().where(StockMovement.goods == goods.id))
        assert goods.stock == moved, goods.id


# --- staff forms -------------------------------------------------------------------------------


@FUZZ
@given(form=st.fixed_dictionaries({
    "title": texts, "description": texts, "community": numbers, "category": st.one_of(
        st.sampled_from(["volunteering", "rescue", "mediation"]), texts),
    "starts_at": times, "ends_at": times, "place": texts, "capacity": numbers,
}))
def test_the_activity_form_takes_anything(app, shop, form):
    coordinator = Session(app, "coord")
    if form["community"].isdigit() and len(form["community"]) < 3:
        form["community"] = str(shop["place"].north.id)
    assert_answered(coordinator.send("/activities/new", form, has="title"))
    assert_whole()


@FUZZ
@given(form=st.fixed_dictionaries({
    "display_name": texts, "phone": st.one_of(texts, st.from_regex(r"\+?86 ?1[3-9]\d ?\d{4} ?\d{4}", fullmatch=True)),
    "community": numbers, "language": st.one_of(st.sampled_from(["zh_Hans", "en"]), texts),
    "grid_label": texts, "unit_label": texts, "sms_opt_out": st.sampled_from(["", "y", "on", "\x00"]),
}))
def test_the_resident_form_takes_anything(app, shop, form):
    coordinator = Session(app, "coord")
    if form["community"].isdigit():
        form["community"] = str(shop["place"].north.id)
    new = {name: value for name, value in form.items() if name != "sms_opt_out"}
    assert_answered(coordinator.send("/residents/new", new, has="display_name",
                                     extra={"sms_opt_out": form["sms_opt_out"]}))  # not on the new form
    assert_answered(coordinator.send(f"/residents/{shop['resident'].id}/edit", form, has="display_name"))
    assert_whole()


@FUZZ
@given(form=st.fixed_dictionaries({
    "community": numbers, "name_zh": texts, "name_en": texts, "price": numbers, "limit_quantity": numbers,
    "limit_period": st.one_of(st.sampled_from(["", "month", "week"]), texts), "active": st.sampled_from(["", "y"]),
}), stock=st.fixed_dictionaries({"kind": st.one_of(st.sampled_from(["receive", "adjust"]), texts),
                                  "quantity": numbers, "reason": texts_without_nul}))
def test_the_goods_forms_take_anything(app, shop, form, stock):
    coordinator = Session(app, "coord")
    if form["community"].isdigit():
        form["community"] = str(shop["place"].north.id)
    soap = shop["soap"].id
    new = {name: value for name, value in form.items() if name != "active"}
    assert_answered(coordinator.send("/goods/new", new, has="name_zh",
                                     extra={"active": form["active"]}))  # not on the new form
    assert_answered(coordinator.send(f"/goods/{soap}/edit", form, has="name_zh"))
    assert_answered(coordinator.send("/goods/", stock, action=f"/goods/{soap}/stock"))
    assert Goods.get_by_id(soap).stock >= 0
    assert_whole()


@FUZZ
@given(text=texts, community=numbers, button=st.sampled_from(["preview", "send"]))
def test_the_announcement_form_takes_anything(app, shop, text, community, button):
    coordinator = Session(app, "coord")
    if community.isdigit():
        community = str(shop["place"].north.id)
    if button == "send":  # the Send button is on the preview of a first, harmless text
        coordinator.browser.get("/announce")
        coordinator.browser.submit(has="text", button="preview", text="预告", community=shop["place"].north.id)
        form = coordinator.browser.find(has="text", button="send")
        assert_answered(coordinator.send_form(form, {"text": text, "community": community}, button="send"))
    else:
        assert_answered(coordinator.send("/announce", {"text": text, "community": community}, has="text",
                                         button="preview"))
    assert_whole()


@FUZZ
@given(username=texts, password=texts)
@example(username="coord\x00", password=make.PASSWORD)
def test_the_login_form_takes_anything(app, shop, username, password):
    browser = Browser(app.test_client())
    browser.get("/login")
    form = browser.find(has="password")
    response = browser.send(form, form.forged({"username": username, "password": password}), follow_redirects=False)
    assert_answered(response)
    assert response.status_code in (200, 429) or ("\x00" in username + password and response.status_code == 400)


# --- the resident CSV import -------------------------------------------------------------------

row_values = st.fixed_dictionaries({
    "name": texts,
    "phone": st.one_of(texts, st.from_regex(r"(\+86)?1[3-9]\d{9}", fullmatch=True)),
    "community": st.one_of(st.sampled_from(["N1", "S1", "D1", "n1", " N1 "]), texts_without_nul),
    "language": st.one_of(st.sampled_from(["", "zh_Hans", "en"]), texts),
    "grid": texts, "unit": texts,
})


COLUMNS = ("name", "phone", "community", "language", "grid", "unit")


def csv_text(rows, extra):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([*(row[column] for column in COLUMNS), *extra])
    return out.getvalue()


@FUZZ
@given(rows=st.lists(row_values, max_size=6), extra=st.sampled_from([[], ["x"]]),
       raw=st.one_of(st.none(), st.binary(max_size=300), st.text(max_size=300)), dry_run=st.booleans())
def test_import_residents_takes_any_csv(app, runner, shop, tmp_path, rows, extra, raw, dry_run):
    path = tmp_path / "residents.csv"
    # Known failures kept out of the raw files: a bare carriage return outside quotes
    # (test_a_csv_with_mac_line_endings_is_read) and a NUL (test_a_csv_community_with_a_nul_is_a_bad_row).
    if raw is None:
        path.write_text(csv_text(rows, extra), encoding="utf-8")
    elif isinstance(raw, bytes):
        path.write_bytes(raw.replace(b"\r", b"\n").replace(b"\x00", b""))
    else:
        path.write_text("name,phone,community\n" + raw.replace("\r", "\n").replace("\x00", ""), encoding="utf-8",
                        newline="")
    before = Resident.select().count()
    result = runner.invoke(args=["import-residents", str(path), *(["--dry-run"] if dry_run else [])])
    assert result.exit_code in (0, 1), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    created = Resident.select().count() - before
    summary = re.search(r"(?:would create|created) (\d+) residents", result.output)
    if dry_run:
        assert created == 0
    elif summary:
        assert created == int(summary.group(1))
    else:
        assert created == 0 and "cannot read" in result.output
    if raw is None and not extra and not dry_run:
        # Every row is created, refused, or (made by an earlier example) already registered.
        unchanged = re.search(r"(\d+) already registered", result.output)
        errors = len(re.findall(r"^line \d+: ", result.output, re.M))
        assert created + errors + (int(unchanged.group(1)) if unchanged else 0) == len(rows)
    assert_whole()


def test_a_csv_with_mac_line_endings_is_read(app, runner, shop, tmp_path):
    path = tmp_path / "mac.csv"
    path.write_bytes("name,phone,community\r王阿姨,13900139000,N1\r".encode())
    result = runner.invoke(args=["import-residents", str(path)])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0 and "created 1 residents" in result.output


def test_a_csv_community_with_a_nul_is_a_bad_row(app, runner, shop, tmp_path):
    path = tmp_path / "nul.csv"
    path.write_text("name,phone,community\n王阿姨,13900139000,N\x001\n李叔,13900139001,N1\n", encoding="utf-8")
    result = runner.invoke(args=["import-residents", str(path)])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 1 and "created 1 residents, 1 rows with errors" in result.output


# --- the counter -------------------------------------------------------------------------------

scanned = st.one_of(
    texts,
    st.text(alphabet=codes.ALPHABET + codes.ALPHABET.lower() + "01IO -_", min_size=8, max_size=14),
    st.text(alphabet=string.digits + "０１２３４５６７８９ ", max_size=12),
    st.sampled_from(["ＡＢＣＤＥＦＧＨ２３", "C" * 64, "C" * 10_000, "' OR ''='", "1; SELECT pg_sleep(5)"]),
)


@FUZZ
@given(code=scanned, phone=st.one_of(st.just(""), texts, st.just("138 0013 8000")), digits=scanned, card=scanned,
       which=st.sampled_from(["code", "phone", "card"]))
def test_the_counter_takes_any_scan(app, shop, member_card, code, phone, digits, card, which):
    clerk = Session(app, "till")
    form = {"code": {"code": code}, "phone": {"phone": phone, "digits": digits},
            "card": {"card": card, "digits": digits}}
    before = (Redemption.select().count(), ledger.balance(Resident.get_by_id(shop["resident"].id).account_id))
    if which == "card":  # the card and code form comes after a real card's scan
        clerk.browser.get("/counter/")
        clerk.browser.submit(has="code", code=member_card)
        assert_answered(clerk.send_form(clerk.browser.find(has="card"), form[which]))
    else:
        assert_answered(clerk.send("/counter/", form[which], has=which))
    quantity = "".join(c for c in digits if c.isdecimal() or not c.isdigit())
    # No cart is shown for a scan that finds nobody: this checkout is made by hand.
    assert_answered(clerk.post("/counter/checkout", {**form[which], "checkout_key": code[:80].replace("\x00", ""),
                                                     f"qty-{shop['soap'].id}": quantity}))
    after = (Redemption.select().count(), ledger.balance(Resident.get_by_id(shop["resident"].id).account_id))
    assert after == before  # no code was issued, so nothing can be bought
    assert_whole()


@FUZZ
@given(noise=st.sampled_from(["", " ", "-", "\t", "\n"]), width=st.booleans(), case=st.booleans(),
       qty=st.one_of(st.sampled_from(["1", "01", " 1 ", "１"]), quantities))
def test_a_real_code_however_written_buys_at_most_once(app, shop, noise, width, case, qty):
    clerk = Session(app, "till")
    with app.app_context():
        code = codes.issue_qr_code(Resident.get_by_id(shop["resident"].id), app.config["SECRET_KEY"])
    written = noise.join(code[:5]) + noise + code[5:]
    written = written.lower() if case else written
    written = written.translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)}) if width else written
    before = Redemption.select().count()
    cart = clerk.cart(code)
    for _ in range(2):  # the cart's form, sent twice with the code written another way
        response = clerk.send_form(cart, {"code": written, f"qty-{shop['soap'].id}": qty})
        assert_answered(response)
    assert Redemption.select().count() - before <= 1
    assert CounterCode.select().where(CounterCode.used_at.is_null(False)).count() == Redemption.select().count()
    assert_whole()


@FUZZ
@given(q=texts_without_nul)
def test_the_resident_search_takes_anything(app, shop, q):
    coordinator = Session(app, "coord")
    assert_answered(coordinator.send("/residents/", {"q": q}, has="q"))


# --- odd characters --------------------------------------------------------------------------


@pytest.mark.parametrize("quantity", ["¹", "²"])
def test_a_superscript_quantity_is_not_a_500(app, shop, quantity):
    clerk = Session(app, "till")
    with app.app_context():
        code = codes.issue_qr_code(Resident.get_by_id(shop["resident"].id), app.config["SECRET_KEY"])
    response = clerk.send_form(clerk.cart(code), {f"qty-{shop['soap'].id}": quantity})
    assert_answered(response)
    assert Redemption.select().count() == 0


@pytest.mark.parametrize("case", ["resident search", "checkout key", "void reason", "stock reason", "rule name"])
def test_a_nul_is_never_a_server_error(app, shop, case):
    nul = "a\x00b"
    with app.app_context():
        make.staff("admin", username="root")
        row = codes.find_qr_code(codes.issue_qr_code(Resident.get_by_id(shop["resident"].id), app.config["SECRET_KEY"]),
                                 app.config["SECRET_KEY"])
        redemption = checkout(make.clerk(shop["place"].north), row, [(shop["soap"].id, 1)], checkout_key="probe")
        fresh = codes.issue_qr_code(Resident.get_by_id(shop["resident"].id), app.config["SECRET_KEY"])
    session = Session(app, "root")
    if case == "resident search":
        response = session.send("/residents/", {"q": nul}, has="q")
    elif case == "checkout key":
        response = session.send_form(session.cart(fresh), {"checkout_key": nul, f"qty-{shop['soap'].id}": "1"})
    elif case == "void reason":
        response = session.send(f"/counter/receipts/{redemption.id}", {"reason": nul},
                                action=f"/counter/receipts/{redemption.id}/void")
    elif case == "stock reason":
        response = session.send("/goods/", {"kind": "adjust", "quantity": "-1", "reason": nul},
                                action=f"/goods/{shop['soap'].id}/stock")
    else:
        response = session.send("/rules", {"category": "volunteering", "points": "1", "confirmations_required": "1",
                                           "name_zh": nul, "name_en": nul}, has="points")
    assert_answered(response)
    assert response.status_code == 400 and "NUL" in response.get_data(as_text=True)
    assert_whole()
