"""Importing residents from a sheet through the page, as a coordinator does with a CSV that Excel
on Chinese Windows saved (GBK, Chinese headers, community names): check, then import, then again."""

import io

import community_factory as make
from webforms import Browser

from community import Resident

SHEET = ("姓名,手机号,社区,网格,单元,语言\n"
         "陈桂兰,138 0013 8000,北社区,第一网格,3号楼1单元,中文\n"  # 2: good
         "王伯,,北社区,第一网格,5号楼2单元,\n"  # 3: no phone, with a unit: good
         "李四,,北社区,,,\n"  # 4: no phone and no unit
         "赵六,12345,北社区,,,\n"  # 5: a bad number
         "钱七,139 0013 9000,西社区,,,\n"  # 6: no such community
         "孙八,139 0013 9001,南社区,,,\n"  # 7: another community's resident: not this coordinator's
         "周九,139 0013 9002,N1,,,English\n"  # 8: by code, in English: good
         "吴十,139 0013 9003,北社区,,,法语\n")  # 9: an unknown language


def upload(browser, data, filename="居民.csv"):
    browser.get("/residents/import")
    form = browser.find(action="/residents/import")
    values = form.values(button="step=check")
    values.add("sheet", (io.BytesIO(data), filename))
    return browser.send(form, values).get_data(as_text=True)


def test_a_gbk_sheet_is_checked_then_imported_and_a_second_import_changes_nothing(app, client):
    with app.app_context():
        place = make.build_place()
        make.coordinator(place.north, username="north-coord")
    browser = Browser(client)
    browser.login("north-coord")
    page = upload(browser, SHEET.encode("gbk"))
    assert "还没有导入" in page and "可以导入 3 人" in page
    problems = page[page.index('id="problems"'):]
    for line, words in ((4, "楼栋和单元"), (5, "手机号无效"), (6, "社区"), (7, "无权"), (9, "法语")):
        cell = problems[problems.index(f'>{line}</td><td data-label="问题">'):]
        assert words in cell[:cell.index("</td>", len(f'>{line}</td>'))], (line, words)
    with app.app_context():
        assert Resident.select().count() == 0  # the check imported nothing
    done = browser.submit(button="导入 3 位居民").get_data(as_text=True)
    assert "新登记 3 人" in done
    with app.app_context():
        names = {r.display_name: r for r in Resident.select()}
        assert set(names) == {"陈桂兰", "王伯", "周九"}
        assert (names["王伯"].phone, names["王伯"].unit_label) == (None, "5号楼2单元")
        assert names["周九"].language == "en" and names["陈桂兰"].grid_label == "第一网格"
    again = upload(browser, SHEET.encode("utf-8-sig"))
    assert "可以导入 0 人，已登记过 3 人" in again
    exported = client.get("/residents/export.csv")
    assert exported.status_code == 200 and exported.data.startswith("\ufeff姓名,手机号,社区".encode())
    round_trip = upload(browser, exported.data)
    assert "可以导入 0 人，已登记过 3 人，有 0 行有问题" in round_trip
    template = client.get("/residents/import/template.csv").data.decode("utf-8-sig")
    assert template.splitlines()[0] == "姓名,手机号,社区,网格,单元,语言"


def test_a_sheet_that_is_no_sheet_says_so(app, client):
    with app.app_context():
        place = make.build_place()
        make.coordinator(place.north, username="north-coord")
    browser = Browser(client)
    browser.login("north-coord")
    assert "表格缺少这几列：社区 community, 姓名 name, 手机号 phone" in upload(browser, b"who,number\nx,1\n")
    assert "另存为" in upload(browser, b"\xff\xfe\x00\x00 not text")
