"""A grid worker's side of a case on the pages they use, submitting the forms the pages render;
the reporter by SMS; the notices through the outbox worker."""

import csv
import io
import re

import community_factory as make
import pytest
from senders import RecordingSender, deliver
from webforms import Browser, find_form

import ledger
from botapp.dialogue import SMS
from community import Case, Community, Staff, cases, places

PHONE = "+8613800138000"


@pytest.fixture
def world(app):
    with app.app_context():
        place = make.build_place()
        make.coordinator(place.north, username="north-coord")
        worker = make.staff(Staff.GRID_WORKER, places.add_place("N1-G1", "一网格", "grid", "N1"), username="grid-wang")
        resident = make.resident(place.north, "陈桂兰", phone_number=PHONE, grid_label="一网格", unit_label="3号楼")
    return {"worker": worker, "resident": resident}


def test_a_grid_worker_takes_a_report_from_new_to_closed_and_the_reporter_answers_1(app, client, world):
    dialogue, phone = app.extensions["linli.dialogue"], RecordingSender()
    with app.app_context():
        dialogue.handle(SMS, PHONE, "反映 3号楼楼道灯坏了")
        recorded = dialogue.handle(SMS, PHONE, "3").full_text()
        number = Case.select().get().id
    assert f"编号{number}" in recorded
    browser = Browser(client)
    browser.login("grid-wang")
    inbox = browser.get("/cases/").get_data(as_text=True)
    assert "新反映的 (1)" in inbox and "3号楼楼道灯坏了" in inbox
    browser.get(f"/cases/{number}")
    page = browser.submit(button="受理").get_data(as_text=True)
    assert "办理中" in page
    deliver(app, phone)
    assert f"编号{number}已受理" in phone.texts[-1][1]
    page = browser.submit(button="已处理，请反映人确认", note="换了新灯泡").get_data(as_text=True)
    assert "等反映人确认" in page and "换了新灯泡" in page
    deliver(app, phone)
    assert "解决了吗？回复1已解决，2未解决" in phone.texts[-1][1]
    with app.app_context():
        thanked = dialogue.handle(SMS, PHONE, "1").full_text()  # the worker remembered the question
        resident = world["resident"]
        assert Case.get_by_id(number).state == Case.CLOSED
        assert ledger.balance(resident.account_id) == cases.BY_CODE["facilities"].points
        assert ledger.verify().ok
    assert "已办结" in thanked and "积分+0.2" in thanked  # its reply is the one message about it
    deliver(app, phone)
    assert len(phone.texts) == 2
    page = browser.get(f"/cases/{number}").get_data(as_text=True)
    assert "已办结" in page or "closed" in page
    assert "确认已解决，办结" in page and "反映人因此获得 0.2 分" in page


def test_staff_write_down_a_report_once_and_a_double_click_changes_nothing(app, client, world):
    browser = Browser(client)
    browser.login("north-coord")
    browser.get("/cases/new")
    form = find_form(browser.html, has="text")
    values = form.values(phone="13800138000", category="hazard", text="井盖松动", place="3号楼门口")
    target = browser.target(form)
    done = browser.send(form, values)
    assert done.status_code == 200 and "已登记" in done.get_data(as_text=True)
    again = client.post(target, data=values, follow_redirects=True)  # again: a double click, the back button
    assert again.status_code == 200 and "已经记录过了" in again.get_data(as_text=True)
    with app.app_context():
        assert Case.select().count() == 1
        [case] = Case.select()
        assert (case.place, case.reported_by.username) == ("3号楼门口", "north-coord")
        assert make.kinds_of(world["resident"]) == ["case_received"]


def test_a_refusal_needs_its_reason_and_the_reporter_hears_it(app, client, world):
    with app.app_context():
        case = cases.report(world["resident"], "other", "楼上太吵")
    browser = Browser(client)
    browser.login("grid-wang")
    browser.get(f"/cases/{case.id}")
    page = browser.submit(button="不属社区办理：说明原因后退回").get_data(as_text=True)
    assert "请先在框里写明原因" in page
    browser.get(f"/cases/{case.id}")
    browser.submit(button="不属社区办理：说明原因后退回", note="请拨打12345热线")
    with app.app_context():
        assert Case.get_by_id(case.id).state == Case.REFUSED
        assert make.kinds_of(world["resident"]) == ["case_refused"]


def test_the_reports_count_cases_and_export_them(app, client, world):
    with app.app_context():
        resident, coordinator = world["resident"], Staff.get(Staff.username == "north-coord")
        quick = cases.handled(coordinator, cases.report(resident, "hazard", "井盖松了"), "换了")
        cases.verify(quick, True, resident=resident)
        again = cases.handled(coordinator, cases.report(resident, "facilities", "灯坏了"), "修了")
        again = cases.verify(again, False, resident=resident)
        cases.verify(cases.handled(coordinator, again, "换了灯"), True, resident=resident)
        cases.report(resident, "environment", "垃圾")
    browser = Browser(client)
    browser.login("north-coord")
    page = browser.get("/reports/").get_data(as_text=True)
    table = page[page.index('id="cases"'):page.index("</table>", page.index('id="cases"'))]
    cells = re.findall(r'data-label="[^"]+">(?:<strong>)?([^<]*)', table)
    assert cells[-5:] == ["合计", "3", "2", "2", "1"]  # received, closed, on time, at the first fix
    chart = page[page.index('id="cases-chart"'):page.index("</svg>", page.index('id="cases-chart"'))]
    assert "<title>安全隐患 收到: 1</title>" in chart and "<title>设施维修 办结: 1</title>" in chart
    assert "邻里纠纷 收到" not in chart  # nothing to draw
    assert 'formaction="/reports/export/cases.csv"' in page
    form = find_form(browser.html, has="from")  # the page's own filter, sent to the CSV button's address
    response = client.get("/reports/export/cases.csv", query_string=form.values())
    rows = list(csv.DictReader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    assert [r["反映的问题"] for r in rows] == ["井盖松了", "灯坏了", "垃圾"]
    assert [r["重新办理次数"] for r in rows] == ["0", "1", "0"]
    assert all(r["手机号"].startswith("138****") for r in rows)


def test_a_case_is_handed_to_another_grids_worker_through_the_page(app, client, world):
    with app.app_context():
        neighbour = make.staff(Staff.GRID_WORKER, places.add_place("N1-G2", "二网格", "grid", "N1"),
                               username="grid-li")
        make.coordinator(Community.get(Community.code == "S1"), username="south-coord")
        case = cases.report(world["resident"], "facilities", "隔壁网格的路灯坏了")
    browser = Browser(client)
    browser.login("grid-wang")
    browser.get(f"/cases/{case.id}")
    form = find_form(browser.html, button="转交")
    offered = {label for _value, label, _disabled in next(f for f in form.fields if f.name == "to").options}
    assert offered == {"grid-li", "north-coord"}  # this community's colleagues, not south's, not oneself
    page = browser.submit(button="转交", to=str(neighbour.id)).get_data(as_text=True)
    assert "办理人: grid-li" in page and "转给 grid-li" in page
    with app.app_context():
        assert Case.get_by_id(case.id).assignee_id == neighbour.id
        assert cases.may_handle(neighbour, Case.get_by_id(case.id))


def test_a_coordinator_adds_a_kind_with_its_own_handler_and_stops_offering_another(app, client, world):
    browser = Browser(client)
    browser.login("north-coord")
    browser.get("/cases/")
    link = re.search(r'href="([^"]+)"[^>]*>问题类别<', browser.html)
    page = browser.get(link.group(1)).get_data(as_text=True)
    assert page.count('name="kind"') == len(cases.CATEGORIES) + 1  # each kind, and one to add
    handlers = dict((label, value) for value, label, _ in next(
        f for f in browser.find(has="new-name_zh").fields if f.name == "new-handler").options)
    assert handlers["grid-wang"] == str(world["worker"].id) and "反映人所在网格的网格员" in handlers
    form = browser.find(has="new-name_zh")
    data = form.values(**{"new-name_zh": "电梯故障", "new-name_en": "Lift", "new-accept_hours": "1",
                          "new-points": "0.3", "new-handler": handlers["grid-wang"]})
    browser.send(form, data)
    assert "已保存" in browser.html and "电梯故障" in browser.html
    browser.send(form, data)  # the same form sent again (a double click, a reload)
    assert "已经记录过" in browser.html
    page = browser.submit(has="dispute-name_zh", dispute__active=False).get_data(as_text=True)
    assert "不再提供" in page
    page = browser.submit(has="new-name_zh", new__name_zh="其他").get_data(as_text=True)
    assert "已经有同名的类别" in page
    with app.app_context():
        north = Community.get(Community.code == "N1")
        offered = [k.name_zh for k in cases.categories(north.id)]
        assert offered == ["安全隐患", "环境卫生", "设施维修", "其他", "电梯故障"]
        dialogue = app.extensions["linli.dialogue"]
        asked = dialogue.handle(SMS, PHONE, "反映 电梯又坏了").full_text()
        assert "5电梯故障" in asked and "纠纷" not in asked
        dialogue.handle(SMS, PHONE, "5")
        case = Case.select().get()
        assert (case.assignee_id, cases.category(case.category, north.id).points) == (world["worker"].id, 30)


def test_the_photos_sent_with_a_report_are_on_its_page(app, client, world):
    with app.app_context():
        resident = world["resident"]
        photo = cases.keep_photo(resident, make.photo_bytes((2000, 1500)))
        case = cases.report(resident, "hazard", "井盖松了", photos=[photo])
    browser = Browser(client)
    browser.login("grid-wang")
    page = browser.get(f"/cases/{case.id}").get_data(as_text=True)
    src = re.search(r'<img src="([^"]+)"', page).group(1)
    assert src == f"/cases/{case.id}/photos/{photo}" and "反映时发来的照片1" in page
    image = client.get(src)
    assert image.status_code == 200 and image.mimetype == "image/jpeg"
    assert image.headers["X-Content-Type-Options"] == "nosniff" and image.data[:3] == b"\xff\xd8\xff"
    assert client.get(f"/cases/{case.id}/photos/{photo + 1}").status_code == 404
