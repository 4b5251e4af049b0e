"""Reports: points per local week by category, community figures, top goods and stock, the CSV
exports (BOM, masked phones, no formula injection), the passbook statement, and who may see what."""

import csv
import datetime
import io
import json
import re
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import community_factory as make
import pytest
from webforms import Browser

import ledger
from botapp import outbox
from catalog import codes, reports
from catalog.checkout import checkout, void_checkout
from catalog.goods import create_goods, receive_stock
from catalog.models import Redemption
from community import AuditEvent, Staff
from community.awards import confirm_participation, report_deed, reverse_award
from ledger import Entry, Transfer

ZONE = ZoneInfo("Asia/Shanghai")
SECRET = "report-secret"
HOSTILE = '=HYPERLINK("http://evil.example","click")'
HOSTILE_NOTE = "@SUM(1+1)*cmd|' /C calc'!A0"
DAY = datetime.timedelta(days=1)


def today():
    return datetime.datetime.now(ZONE).date()


def this_monday():
    return today() - today().weekday() * DAY


def local(day, hour=0, minute=0, second=0):
    """A local wall-clock time as the naive UTC the database stores."""
    moment = datetime.datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=ZONE)
    return moment.astimezone(datetime.UTC).replace(tzinfo=None)


def earn(staff, resident, category, note="值守", second=None):
    signup = confirm_participation(staff, report_deed(staff, resident, category, note))
    return confirm_participation(second, signup) if second else signup


def buy(clerk, resident, cart, key, now=None):
    row = codes.find_qr_code(codes.issue_qr_code(resident, SECRET), SECRET)
    return checkout(clerk, row, cart, checkout_key=key, now=now)


@pytest.fixture
def world(app):
    """North: two earning residents (one with a hostile name), one idle; goods, checkouts (one of
    them last week, one voided) and a failed notice. South: one resident who earns and spends."""
    with app.app_context():
        place = make.build_place()
        make.staff(Staff.ADMIN, username="boss")
        north = make.coordinator(place.north, username="north-coord")
        north2 = make.coordinator(place.north, username="north-coord2")
        south = make.coordinator(place.south, username="south-coord")
        clerk = make.clerk(place.north, username="north-clerk")
        south_clerk = make.clerk(place.south)
        alice = make.resident(place.north, HOSTILE)
        bob = make.resident(place.north, "王大爷")
        make.resident(place.north, "不活跃")
        carol = make.resident(place.south, "南居民")
        for _ in range(4):
            earn(north, alice, "volunteering")
        earn(north, alice, "mediation", note=HOSTILE_NOTE)
        earn(north, bob, "rescue", second=north2)
        reverse_award(north, earn(north, bob, "volunteering"), "记错人了")
        earn(south, carol, "volunteering")
        soap = create_goods(north, place.north, "肥皂", "Soap", 150)
        oil = create_goods(north, place.north, "食用油", "Cooking oil", 200)
        rice = create_goods(north, place.north, "大米", "Rice", 100)
        tea = create_goods(south, place.south, "茶叶", "Tea", 100)
        for goods, quantity in ((soap, 10), (oil, 10), (rice, 3)):
            receive_stock(north, goods, quantity)
        receive_stock(south, tea, 10)
        buy(clerk, alice, [(soap.id, 2)], "alice-soap")
        buy(clerk, alice, [(oil.id, 1)], "alice-oil", now=local(this_monday() - 7 * DAY, 10))
        void_checkout(north, buy(clerk, bob, [(rice.id, 2)], "bob-rice"), "拿错了")
        buy(clerk, bob, [(soap.id, 1)], "bob-soap")
        buy(south_clerk, carol, [(tea.id, 1)], "carol-tea")
        claimed = outbox.claim(limit=500)
        outbox.mark_failed(next(n for n in claimed if n.resident_id == bob.id), "number refused")
    return SimpleNamespace(place=place, alice=alice, bob=bob, carol=carol, soap=soap, oil=oil, rice=rice)


def period(weeks=12):
    return reports.local_bounds(this_monday() - (weeks - 1) * 7 * DAY, today(), ZONE)


def login(client, username, language="en"):
    """Log in and, unless the pages already speak `language`, click the language button."""
    browser = Browser(client)
    browser.login(username)
    switch = browser.find("/language")
    if ("lang", language) in [(name, value) for name, value, _ in switch.buttons]:
        browser.send(switch, switch.values(button="lang"))
    assert browser.response.status_code == 200
    return browser


def read_csv(response):
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    data = response.get_data()
    assert data.startswith(b"\xef\xbb\xbf")
    header, *rows = csv.reader(io.StringIO(data.decode("utf-8-sig")))
    return [dict(zip(header, row, strict=True)) for row in rows]


# --- the domain figures ------------------------------------------------------------------------


def test_points_per_local_week_by_category(world):
    start, end = period()
    weeks = reports.points_by_week([world.place.north], start, end, ZONE)
    assert [w.starts for w in weeks] == [this_monday() - 7 * DAY * n for n in range(11, -1, -1)]
    now, last_week = weeks[-1], weeks[-2]
    assert now.issued == {"volunteering": 500, "mediation": 150, "rescue": 300}
    assert (now.issued_total, now.reversed, now.redeemed) == (950, -100, 450)
    assert (last_week.issued, last_week.reversed, last_week.redeemed) == ({}, 0, 200)
    assert all(not w.issued and not w.reversed and not w.redeemed for w in weeks[:-2])
    both = reports.points_by_week([world.place.north, world.place.south], start, end, ZONE)[-1]
    assert (both.issued["volunteering"], both.redeemed) == (600, 550)


def test_weeks_and_days_begin_at_local_midnight(world, app, client):
    north = world.place.north
    with app.app_context():
        coordinator = Staff.get(Staff.username == "north-coord")
        clerk = Staff.get(Staff.username == "north-clerk")
        earn(coordinator, world.alice, "volunteering")
        earn(coordinator, world.alice, "volunteering")
        monday = this_monday() - 14 * DAY
        buy(clerk, world.alice, [(world.rice.id, 1)], "sunday-night", now=local(monday - DAY, 23, 59, 59))
        buy(clerk, world.alice, [(world.rice.id, 1)], "monday-morning", now=local(monday))
    weeks = {w.starts: w.redeemed for w in reports.points_by_week([north], *period(), ZONE)}
    assert (weeks[monday - 7 * DAY], weeks[monday]) == (100, 100)

    login(client, "north-coord")

    def keys(first, last):
        url = f"/reports/export/redemptions.csv?community=N1&from={first}&to={last}"
        return [row["Checkout"] for row in read_csv(client.get(url))]

    sunday_id, monday_id = (str(r.id) for r in Redemption.select().where(
        Redemption.checkout_key.in_(["sunday-night", "monday-morning"])).order_by(Redemption.id))
    assert keys(monday, monday) == [monday_id]
    assert keys(monday - DAY, monday - DAY) == [sunday_id]
    assert keys(monday - DAY, monday) == [sunday_id, monday_id]
    assert keys(monday + DAY, monday + 3 * DAY) == []


def test_community_figures_top_goods_and_stock(world):
    place = world.place
    rows, total = reports.community_totals([place.north, place.south, place.east], *period(), low_stock=5)
    figures = {r.community.code: (r.issued, r.reversed, r.redeemed, r.active_residents, r.failed_notices, r.low_stock)
               for r in rows}
    assert figures == {"N1": (950, -100, 650, 2, 1, 1), "S1": (100, 0, 100, 1, 0, 0), "E1": (0, 0, 0, 0, 0, 0)}
    assert (total.issued, total.reversed, total.redeemed, total.active_residents, total.failed_notices,
            total.low_stock) == (1050, -100, 750, 3, 1, 1)
    top = reports.top_goods([place.north], *period())
    assert [(g.name_en, quantity, points) for g, quantity, points in top] == [("Soap", 3, 450), ("Cooking oil", 1, 200)]
    assert [(g.name_en, g.stock) for g in reports.stock_levels([place.north])] == [
        ("Rice", 3), ("Soap", 7), ("Cooking oil", 9)]
    later = reports.local_bounds(today() + DAY, today() + 7 * DAY, ZONE)
    assert reports.top_goods([place.north], *later) == []
    assert reports.community_totals([place.north], *later, low_stock=5)[1].active_residents == 0


# --- the pages ---------------------------------------------------------------------------------


def test_the_dashboard_draws_the_chart_and_tables_for_the_scope(client, world):
    browser = login(client, "north-coord")
    page = client.get("/reports/").get_data(as_text=True)
    assert '<svg id="points-chart"' in page and "<rect" in page and "<script" not in page
    assert "North" in page and "South" not in page
    weekly = page[page.index('id="weekly"'):page.index('id="communities"')]
    assert f">{this_monday().isoformat()}</td>" in weekly
    top = page[page.index('id="top-goods"'):page.index('id="stock"')]
    assert top.index("Soap") < top.index("Cooking oil") and "Rice" not in top
    assert 'class="low-stock"' in page[page.index('id="stock"'):]
    browser.logout()
    browser = login(client, "boss")
    everything = browser.get("/reports/").get_data(as_text=True)
    assert "North" in everything and "South" in everything and "East" in everything
    south = browser.submit(action="/reports/", button="Show", community="S1").get_data(as_text=True)
    assert "Tea" in south and "Soap" not in south


def test_who_may_see_which_report(client, world):
    south = world.carol.id
    for url in ("/reports/", "/reports/export/transfers.csv", f"/reports/statement/{south}"):
        assert "/login" in client.get(url).location
    clerk = login(client, "north-clerk")
    for url in ("/reports/", "/reports/export/transfers.csv", f"/reports/statement/{world.bob.id}"):
        assert client.get(url).status_code == 403, url
    clerk.logout()
    login(client, "north-coord")
    for url in ("/reports/?community=S1", "/reports/?community=XX", "/reports/export/redemptions.csv?community=S1",
                f"/reports/statement/{south}"):
        assert client.get(url).status_code == 403, url
    assert client.get("/reports/export/passwords.csv").status_code == 404
    assert client.get("/reports/statement/999999").status_code == 404
    assert AuditEvent.select().where(AuditEvent.action == "report.export").count() == 0


@pytest.mark.parametrize("query, message", [
    ("from=2024-13-01", "Give dates as YYYY-MM-DD"),
    ("from=yesterday", "Give dates as YYYY-MM-DD"),
    ("to=0001-01-01", "Give dates as YYYY-MM-DD"),
    ("from=2024-1-1", "Give dates as YYYY-MM-DD"),
    ("from=2024-05-02&to=2024-05-01", "The start date is after the end date."),
])
def test_bad_dates_are_explained(client, world, query, message):
    login(client, "north-coord")
    for url in ("/reports/", "/reports/export/transfers.csv", f"/reports/statement/{world.bob.id}"):
        response = client.get(f"{url}?{query}", follow_redirects=True)
        assert response.status_code == 200 and message in response.get_data(as_text=True), url
    assert AuditEvent.select().where(AuditEvent.action == "report.export").count() == 0


def test_the_dashboard_period_is_at_most_a_year(client, world):
    login(client, "north-coord")
    response = client.get("/reports/?from=2020-01-01&to=2024-01-01", follow_redirects=True)
    assert "at most a year" in response.get_data(as_text=True)
    assert read_csv(client.get("/reports/export/transfers.csv?from=2020-01-01&to=2024-01-01")) == []


# --- CSV exports -------------------------------------------------------------------------------


def test_ledger_transfers_export(client, world):
    login(client, "north-coord")
    rows = read_csv(client.get("/reports/export/transfers.csv"))
    guarded = "'" + HOSTILE
    assert {r["Name"] for r in rows} == {guarded, "王大爷"}
    alice = [r for r in rows if r["Name"] == guarded]
    assert [r["Points"] for r in alice] == ["1", "1", "1", "1", "1.5", "-3", "-2"]
    assert [r["Balance after"] for r in alice] == ["1", "2", "3", "4", "5.5", "2.5", "0.5"]
    assert [r["Kind"] for r in alice] == ["award"] * 5 + ["redemption"] * 2
    bob = [r for r in rows if r["Name"] == "王大爷"]
    assert [r["Points"] for r in bob] == ["3", "1", "-1", "-2", "2", "-1.5"]
    reversal = bob[2]
    assert reversal["Kind"] == "reversal" and reversal["Reverses transfer"] == bob[1]["Transfer"]
    assert reversal["Staff"] == "north-coord" and reversal["For"] == "记错人了"
    assert bob[0]["For"].startswith("Rescue ") and not any(" v1" in r["For"] for r in rows)
    phones = {r["Phone number"] for r in rows}
    assert all(p.startswith("139****") and len(p) == len("139****0000") for p in phones)
    assert world.bob.phone not in client.get("/reports/export/transfers.csv").get_data(as_text=True)
    event = AuditEvent.select().where(AuditEvent.action == "report.export").order_by(AuditEvent.id).first()
    assert (event.target, event.staff.username) == ("transfers", "north-coord")
    assert event.community_id == world.place.north.id
    assert json.loads(event.detail)["communities"] == ["N1"]


def test_redemptions_export_marks_voided_checkouts(client, world):
    login(client, "north-coord")
    rows = read_csv(client.get("/reports/export/redemptions.csv?community=N1"))
    assert [(r["Goods"], r["Quantity"], r["Price"], r["Points"], r["Voided"], r["Reason"]) for r in rows] == [
        ("Cooking oil", "1", "2", "2", "", ""),
        ("Soap", "2", "1.5", "3", "", ""),
        ("Rice", "2", "1", "2", "yes", "拿错了"),
        ("Soap", "1", "1.5", "1.5", "", ""),
    ]
    assert rows[0]["Time"].startswith((this_monday() - 7 * DAY).isoformat() + " 10:00")
    assert rows[0]["Clerk"] == "north-clerk" and rows[0]["Community"] == "North"


def test_confirmations_export_counts_each_award_once(client, world):
    login(client, "north-coord")
    rows = read_csv(client.get("/reports/export/confirmations.csv"))
    rescue = [r for r in rows if r["Category"] == "Rescue"]
    assert [(r["Confirmed by"], r["Points awarded"], r["State"]) for r in rescue] == [
        ("north-coord", "", "confirmed"), ("north-coord2", "3", "confirmed")]
    total = sum(float(r["Points awarded"] or 0) for r in rows)
    assert total == 9.5
    assert "reversed" in {r["State"] for r in rows}
    assert "'" + HOSTILE_NOTE in {r["Title"] for r in rows}


def test_an_admin_exports_the_whole_district(client, world):
    login(client, "boss")
    rows = read_csv(client.get("/reports/export/redemptions.csv?community=all"))
    assert {r["Community"] for r in rows} == {"North", "South"}
    assert "南居民" in {r["Name"] for r in read_csv(client.get("/reports/export/transfers.csv"))}
    event = AuditEvent.select().where(AuditEvent.action == "report.export").order_by(AuditEvent.id.desc()).first()
    assert json.loads(event.detail)["communities"] == ["E1", "N1", "S1"] and event.community_id is None


# --- the passbook statement ----------------------------------------------------------------------


def test_statement_balances_add_up(world):
    bob = world.bob
    postings = list(Transfer.select().join(Entry).where(Entry.account == bob.account_id).order_by(Entry.seq))
    start, end = postings[2].created_at, postings[-1].created_at + DAY
    statement = reports.statement(bob, start, end)
    assert statement.opening == 400
    assert [line.amount for line in statement.lines] == [-100, -200, 200, -150]
    assert (statement.total_in, statement.total_out, statement.closing) == (200, 450, 150)
    assert statement.opening + statement.total_in - statement.total_out == statement.closing
    before_rice = reports.statement(bob, start, postings[3].created_at)
    assert [line.amount for line in before_rice.lines] == [-100] and before_rice.closing == 300
    nothing_yet = reports.statement(bob, start - 7 * DAY, postings[0].created_at)
    assert (nothing_yet.opening, nothing_yet.lines, nothing_yet.closing) == (0, [], 0)


def test_the_printable_statement(client, world):
    login(client, "north-coord")
    bob = world.bob
    assert f"/reports/statement/{bob.id}" in client.get(f"/residents/{bob.id}").get_data(as_text=True)
    page = client.get(f"/reports/statement/{bob.id}").get_data(as_text=True)
    assert "王大爷" in page and "North" in page
    assert bob.phone[3:6] + "****" + bob.phone[-4:] in page and bob.phone not in page
    assert 'id="opening-balance">0<' in page and 'id="closing-balance">1.5<' in page
    assert page.count("<tr>") == 6 + 1  # the header row and six postings
    assert "记错人了" in page
    with ledger.db.connection_context():
        head = ledger.Account.get_by_id(bob.account_id)
    assert f"{head.version}-{head.head_hash[:16]}" in page  # the passbook carries the chain's head
    later = (today() + DAY).isoformat()
    future = client.get(f"/reports/statement/{bob.id}?from={later}&to={later}").get_data(as_text=True)
    assert 'id="opening-balance">1.5<' in future and 'id="closing-balance">1.5<' in future
    assert "No postings in this period." in future
    with client.get("/static/linli.css") as css:
        assert "@media print" in css.get_data(as_text=True)



def test_reports_and_exports_narrow_to_one_grid(app, client):
    from community import places
    from community.awards import confirm_participation, report_deed

    with app.app_context():
        place = make.build_place()
        boss = make.coordinator(place.north, username="grid-boss")
        places.add_place("N1-G1", "第一网格", "grid", "N1")
        places.add_place("N1-G2", "第二网格", "grid", "N1")
        inside = make.resident(place.north, "陈桂兰", grid_label="第一网格")
        outside = make.resident(place.north, "王伯", grid_label="N1-G2")
        confirm_participation(boss, report_deed(boss, inside, "volunteering", "扫楼道"))
        for _ in range(2):
            confirm_participation(boss, report_deed(boss, outside, "volunteering", "值守"))
    browser = login(client, "grid-boss")
    browser.get("/reports/")
    form = browser.find(action="/reports/")
    assert "N1-G1" in [value for value, _label, _disabled in next(
        x for x in form.fields if x.name == "community").options]
    whole = browser.submit(action="/reports/", community="N1").get_data(as_text=True)
    browser.get("/reports/")
    one = browser.submit(action="/reports/", community="N1-G1").get_data(as_text=True)
    issued = re.compile(r'data-label="Issued">([\d.]+)<')
    assert issued.findall(whole[whole.index('id="communities"'):])[0] == "3"
    assert issued.findall(one[one.index('id="communities"'):])[0] == "1"
    csv_text = client.get("/reports/export/transfers.csv?community=N1-G1").get_data(as_text=True)
    assert "陈桂兰" in csv_text and "王伯" not in csv_text
    assert client.get("/reports/?community=S1-G9").status_code == 403
