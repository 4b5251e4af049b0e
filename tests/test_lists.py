"""The long lists staff read: residents paged with a count and sorted by pinyin or by unit;
activities split into coming and past; the audit log by person, action and day; each goods
item's stock movements."""

import re

import community_factory as make
from webforms import Browser

from catalog.goods import adjust_stock, create_goods, receive_stock
from community import awards


def names_on(page):
    return [cell.split(">", 1)[1].split("<", 1)[0] for cell in page.split('data-label="姓名"><a href=')[1:]]


def test_residents_are_paged_counted_and_sorted(app, client):
    with app.app_context():
        place = make.build_place()
        make.coordinator(place.north, username="coord")
        for name, unit in (("王伯", "10号楼"), ("陈桂兰", "2号楼"), ("张阿姨", "2号楼")):
            make.resident(place.north, name, unit_label=unit)
        for n in range(52):
            make.resident(place.north, f"居民{n:02d}", unit_label="30号楼")
    browser = Browser(client)
    browser.login("coord")
    first = browser.get("/residents/").get_data(as_text=True)
    assert "55 位居民" in first and "第 1 / 2 页" in first and len(names_on(first)) == 50
    assert names_on(first)[:3] == ["陈桂兰", "居民00", "居民01"]  # chen, ju…: by pinyin, not by code point
    second = browser.get("/residents/?page=2").get_data(as_text=True)
    assert names_on(second) == ["居民49", "居民50", "居民51", "王伯", "张阿姨"]
    by_unit = browser.get("/residents/?sort=unit").get_data(as_text=True)
    assert names_on(by_unit)[:3] == ["陈桂兰", "张阿姨", "王伯"]  # 2号楼 before 10号楼
    found = browser.submit(has="q", q="2号楼").get_data(as_text=True)
    assert "2 位居民" in found


def test_activities_are_split_into_coming_and_past(app, client):
    with app.app_context():
        place = make.build_place()
        boss = make.coordinator(place.north, username="coord")
        make.activity(boss, place.north, title="下周的义诊", category="rescue")
        make.begin(make.activity(boss, place.north, title="上周的清扫"))
    browser = Browser(client)
    browser.login("coord")
    page = browser.get("/activities/").get_data(as_text=True)
    coming, past = page.split('id="past"')
    assert "下周的义诊" in coming and "救援" in coming and "北社区" in coming and "上周的清扫" not in coming
    assert "上周的清扫" in past


def test_the_audit_log_filters_by_person_and_action(app, client):
    with app.app_context():
        place = make.build_place()
        make.staff("admin", username="root")
        boss = make.coordinator(place.north, username="coord")
        other = make.coordinator(place.north, username="coord2")
        awards.record_deed(boss, make.resident(place.north, "陈桂兰"), "volunteering", "扫楼道")
        awards.record_deed(other, make.resident(place.north, "王伯"), "volunteering", "看车棚")
    browser = Browser(client)
    browser.login("root")
    browser.get("/audit")
    form = browser.find(has="staff")  # "action" is also the filter's field name
    mine = browser.send(form, form.values(staff=str(boss.id), action="deed.report")).get_data(as_text=True)
    mine = mine.split("<tbody>")[1]
    assert "扫楼道" in mine and "看车棚" not in mine and "确认了报名" not in mine
    everyone = browser.send(form, form.values(staff="", action="deed.report")).get_data(as_text=True)
    assert "扫楼道" in everyone and "看车棚" in everyone


def test_each_goods_item_shows_its_stock_movements(app, client):
    with app.app_context():
        place = make.build_place()
        boss = make.coordinator(place.north, username="coord")
        soap = create_goods(boss, place.north, "肥皂", "", 100)
        receive_stock(boss, soap, 10, "进货")
        adjust_stock(boss, soap, -2, "受潮")
    browser = Browser(client)
    browser.login("coord")
    browser.get("/goods/")
    page = browser.get(f"/goods/{soap.id}/movements").get_data(as_text=True)
    assert 'id="stock">8<' in page and "进货" in page and "受潮" in page and "-2" in page and "+10" in page


def test_the_residents_list_filters_by_grid(app, client):
    from community import places

    with app.app_context():
        place = make.build_place()
        make.coordinator(place.north, username="coord")
        places.add_place("N1-G1", "第一网格", "grid", "N1")
        places.add_place("N1-G2", "第二网格", "grid", "N1")
        make.resident(place.north, "陈桂兰", grid_label="第一网格")
        make.resident(place.north, "王伯", grid_label="N1-G2")
        make.resident(place.north, "李叔")
    browser = Browser(client)
    browser.login("coord")
    browser.get("/residents/")
    def listed(grid):
        browser.get("/residents/")
        return names_on(browser.submit(has="q", grid=grid).get_data(as_text=True))

    assert listed("N1-G1") == ["陈桂兰"]
    link = re.search(r'href="(/residents/export\.csv[^"]*)"', browser.response.get_data(as_text=True)).group(1)
    sheet = client.get(link.replace("&amp;", "&")).data.decode("utf-8-sig")
    assert "陈桂兰" in sheet and "王伯" not in sheet  # the download is of the grid shown
    assert listed("N1-G2") == ["王伯"]  # labelled with the grid's code
    assert len(listed("")) == 3
