"""The five-level grid: places added, renamed, listed and imported from the grid centre's CSV,
on the command line as an operator does it on the first day."""

import community_factory as make
import pytest

from community import Community, places
from community.errors import InvalidInput, UnknownCommunity

GRID_CENTRE_CSV = """编码,名称,层级,上级编码,英文名称,电话
350304001001001,东梅社区第一网格,网格,350304001001,,
350304,荔城区,区,,Licheng District,
350304001,镇海街道,街道,350304,,
350304001001,东梅社区,社区,350304001,Dongmei,0594-2345678
35030400100100101,3号楼1单元,单元,350304001001001,,
"""


def test_the_five_levels_sit_each_under_the_one_above(db):
    district = places.add_place("LC", "荔城区", "district", name_en="Licheng")
    places.add_place("ZH", "镇海街道", "街道", "LC")
    community = places.add_place("DM", "东梅社区", "community", "ZH", phone="0594-2345678")
    places.add_place("DM-G1", "第一网格", "grid", "DM")
    places.add_place("DM-G1-U3", "3号楼1单元", "单元", "DM-G1")
    assert community.issuer_id is not None and Community.get(Community.code == "DM-G1").issuer_id is None
    assert [(depth, p.code) for depth, p in places.tree()] == [
        (0, "LC"), (1, "ZH"), (2, "DM"), (3, "DM-G1"), (4, "DM-G1-U3")]
    assert district.name("en") == "Licheng" and Community.get(Community.code == "DM").phone == "0594-2345678"
    for code, level, parent in (("X1", "grid", "ZH"), ("X2", "unit", None), ("X3", "street", "DM"),
                                ("X4", "district", "LC"), ("X5", "planet", None), ("DM", "community", "ZH"),
                                ("bad code!", "community", "ZH")):
        with pytest.raises(InvalidInput):
            places.add_place(code, "某地", level, parent)
    with pytest.raises(UnknownCommunity):
        places.add_place("X6", "某地", "grid", "NOPE")
    assert places.change_place("DM", name_zh="东梅村", phone="").name_zh == "东梅村"


def test_the_grid_centres_csv_in_gbk_imports_once_and_again_changes_nothing(db):
    data = GRID_CENTRE_CSV.encode("gbk")
    added, renamed, unchanged, problems = places.import_places(places.read_places_csv(data))
    assert (added, renamed, unchanged, problems) == (5, 0, 0, [])
    assert Community.get(Community.code == "350304001001").phone == "0594-2345678"
    assert places.import_places(places.read_places_csv(data)) == (0, 0, 5, [])
    renamed_csv = GRID_CENTRE_CSV.replace("镇海街道", "镇海街道办事处").encode("utf-8-sig")
    assert places.import_places(places.read_places_csv(renamed_csv))[:2] == (0, 1)
    bad = "编码,名称,层级,上级编码\nQ1,某网格,网格,NOPE\nQ2,,社区,\nQ3,某处,星球,\n".encode()
    added, _renamed, _unchanged, problems = places.import_places(places.read_places_csv(bad))
    assert added == 0 and [line for line, _ in problems] == [2, 3, 4]
    assert "NOPE" in problems[0][1]
    with pytest.raises(InvalidInput):
        places.read_places_csv("名字,电话\n张三,1\n".encode())


def test_an_operator_sets_up_a_district_on_the_command_line(app, tmp_path):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["communities", "add", "LC", "荔城区", "--level", "district"]).exit_code == 0
    street = ["communities", "add", "ZH", "镇海街道", "--level", "street", "--parent", "LC"]
    assert runner.invoke(args=street).exit_code == 0
    done = runner.invoke(args=["communities", "add", "DM", "东梅社区", "--level", "community", "--parent", "ZH",
                               "--phone", "0594-2345678"])
    assert done.exit_code == 0, done.output
    refused = runner.invoke(args=["communities", "add", "G1", "第一网格", "--level", "grid", "--parent", "XX"])
    assert refused.exit_code != 0 and "XX" in refused.output
    staff = runner.invoke(args=["create-staff", "dm-coord", "--role", "coordinator", "--community", "DM",
                                "--generate"])
    assert staff.exit_code == 0, staff.output
    sheet = tmp_path / "grid.csv"
    sheet.write_bytes("编码,名称,层级,上级编码\nDM-G1,第一网格,网格,DM\n".encode("gbk"))
    imported = runner.invoke(args=["communities", "import", str(sheet)])
    assert imported.exit_code == 0 and "1 added" in imported.output
    listing = runner.invoke(args=["communities", "list"]).output.splitlines()
    assert listing == ["LC  荔城区  [district]", "  ZH  镇海街道  [street]",
                       "    DM  东梅社区  [community] ☎ 0594-2345678", "      DM-G1  第一网格  [grid]"]
    assert runner.invoke(args=["communities", "set", "DM", "--phone", "0594-1111111"]).exit_code == 0
    with app.app_context():
        assert Community.get(Community.code == "DM").phone == "0594-1111111"
        make.resident(Community.get(Community.code == "DM"), "陈桂兰")  # the community takes residents


def test_an_admin_builds_the_tree_on_the_page_and_archives_only_empty_places(app, client):
    from webforms import Browser

    from community import Staff

    with app.app_context():
        make.staff(Staff.ADMIN, username="boss")
    admin = Browser(client)
    admin.login("boss")
    admin.get("/places/")
    assert "还没有" in admin.response.get_data(as_text=True)
    for level, code, name, parent in (("district", "LC", "荔城区", ""), ("street", "ZH", "镇海街道", "LC"),
                                      ("community", "DM", "东梅社区", "ZH"), ("community", "GC", "拱辰社区", "ZH"),
                                      ("grid", "DM-G1", "第一网格", "DM")):
        admin.get("/places/")
        admin.submit(has="code", level=level, code=code, name_zh=name, parent=parent)
    admin.get("/places/")
    refused = admin.submit(has="code", level="grid", code="X1", name_zh="错的网格", parent="ZH").get_data(as_text=True)
    assert "部分信息缺失或无效" in refused
    with app.app_context():
        assert [p.code for _depth, p in places.tree()] == ["LC", "ZH", "DM", "DM-G1", "GC"]
        make.resident(Community.get(Community.code == "DM"), "陈桂兰")
    admin.get("/places/")
    form = admin.find(action="/places/DM-G1/change")
    admin.send(form, form.values(name_zh="东梅第一网格", parent="GC"))  # renamed and moved
    admin.get("/places/")
    admin.submit(action="/places/DM/archive", button="归档")
    assert "不能归档" in admin.response.get_data(as_text=True)
    admin.submit(action="/places/DM-G1/archive", button="归档")
    with app.app_context():
        grid = Community.get(Community.code == "DM-G1")
        assert (grid.name_zh, grid.parent.code, grid.archived) == ("东梅第一网格", "GC", True)
        assert not Community.get(Community.code == "DM").archived
    assert "把 DM-G1 移动到了 GC 下面" in admin.get("/audit").get_data(as_text=True)


def test_an_empty_database_walks_the_admin_through_the_first_day(app, client):
    from webforms import Browser

    from community import Staff

    runner = app.test_cli_runner()
    made = runner.invoke(args=["create-staff", "root", "--role", "admin", "--generate"])
    password = made.output.rsplit("password: ", 1)[1].strip()
    admin = Browser(client)
    admin.login("root", password)
    steps = admin.get("/").get_data(as_text=True)
    assert "开始使用" in steps and 'href="/places/"' in steps and 'href="/staff/"' in steps
    with app.app_context():
        places.add_place("DM", "东梅社区", "community")
        make.coordinator(Community.get(Community.code == "DM"))
        assert Staff.select().count() == 2
    steps = admin.get("/").get_data(as_text=True)
    assert "<s>建好区域" in steps and 'href="/residents/import"' in steps
