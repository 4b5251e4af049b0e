"""A coordinator's home page is their day: today's and this week's activities with their places,
what waits for a decision (with "1 of 2" for rescues), goods running low, the week's points."""

import datetime
from zoneinfo import ZoneInfo

import community_factory as make
from webforms import Browser

from catalog.goods import create_goods, receive_stock
from catalog.reports import local_bounds
from community import activities, awards
from ledger.models import to_local, utcnow


def test_the_coordinators_day(app, client):
    zone = ZoneInfo(app.config["TIMEZONE"])
    today = to_local(utcnow(), zone).date()
    day_start, _ = local_bounds(today, today, zone)
    with app.app_context():
        place = make.build_place()
        boss = make.coordinator(place.north, username="coord")
        resident = make.resident(place.north, "陈桂兰")
        early = day_start + datetime.timedelta(minutes=1)
        make.activity(boss, place.north, title="今天的义诊", starts_at=early, capacity=8)
        later = make.activity(boss, place.north, title="下个月的活动", starts_at=make.future(days=40))
        activities.join(resident, later)
        awards.record_deed(boss, resident, "rescue", "救起落水儿童")  # 1 of 2 confirmations
        awards.record_deed(boss, resident, "volunteering", "扫楼道")  # 1 point this week
        soap = create_goods(boss, place.north, "肥皂", "Soap", 100)
        receive_stock(boss, soap, 2)
        make.activity(make.coordinator(place.south), place.south, title="南社区的活动", starts_at=early)
    browser = Browser(client)
    browser.login("coord")
    page = browser.get("/").get_data(as_text=True)
    today_part = page.split('id="today"')[1].split("</section>")[0]
    assert "今天的义诊" in today_part and "0/8" not in today_part and "已报 0 / 共 8 个名额" in today_part
    assert "下个月的活动" not in page and "南社区的活动" not in page
    assert "救起落水儿童" in page and "已确认 1 / 需 2 人" in page
    assert "肥皂" in page.split('id="low-stock"')[1] and "剩 2 件" in page
    assert "发出：1" in page.split('id="week"')[1]
