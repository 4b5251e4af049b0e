"""The operator's first day, end to end through the pages: an empty database, an admin who builds
the tree and adds staff, a coordinator who imports a GBK sheet, a grid worker who registers a
resident and reports a deed, and the coordinator who confirms it."""

import io
import re

from webforms import Browser

from community import Resident, Signup, Staff

STRONG = "桂花 开了 2026"


def first_login(app, username, password):
    browser = Browser(app.test_client())
    browser.login(username, password)
    assert browser.url == "/staff/password"
    browser.submit(has="new", current=password, new=STRONG, again=STRONG)
    return browser


def one_time_password(page):
    return re.search(r'id="one-time-password".*?<code>([^<]+)</code>', page, re.S).group(1)


def test_an_empty_database_to_a_grid_workers_deed_confirmed(app):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["init-db"]).exit_code == 0
    made = runner.invoke(args=["create-staff", "root", "--role", "admin", "--generate"])
    admin = Browser(app.test_client())
    admin.login("root", made.output.rsplit("password: ", 1)[1].strip())

    for level, code, name, parent in (("district", "LC", "荔城区", ""), ("street", "ZH", "镇海街道", "LC"),
                                      ("community", "DM", "东梅社区", "ZH"), ("grid", "DM-G1", "第一网格", "DM")):
        admin.get("/places/")
        admin.submit(has="code", level=level, code=code, name_zh=name, parent=parent)
    passwords = {}
    for username, role, place in (("dm-coord", "coordinator", "DM"), ("dm-grid1", "grid_worker", "DM-G1")):
        admin.get("/staff/")
        page = admin.submit(has="username", username=username, role=role, community=place).get_data(as_text=True)
        passwords[username] = one_time_password(page)

    coordinator = first_login(app, "dm-coord", passwords["dm-coord"])
    coordinator.get("/residents/import")
    form = coordinator.find(action="/residents/import")
    values = form.values(button="step=check")
    sheet = ("姓名,手机号,社区,网格,单元\n"
             "陈桂兰,138 0013 8000,东梅社区,第一网格,3号楼1单元\n李叔,139 0013 9000,东梅社区,,5号楼\n")
    values.add("sheet", (io.BytesIO(sheet.encode("gbk")), "居民.csv"))
    coordinator.send(form, values)
    coordinator.submit(button="导入 2 位居民")

    grid_worker = first_login(app, "dm-grid1", passwords["dm-grid1"])
    listing = grid_worker.get("/residents/").get_data(as_text=True)
    assert "陈桂兰" in listing and "李叔" not in listing  # only the residents of their grid
    grid_worker.get("/residents/new")
    grid_worker.submit(has="display_name", display_name="王阿婆", phone="", unit_label="3号楼2单元")
    with app.app_context():
        new = Resident.get(Resident.display_name == "王阿婆")
        assert (new.grid_label, new.community.code, new.phone) == ("第一网格", "DM", None)
    grid_worker.get("/awards/new?phone=13800138000")
    done = grid_worker.submit(has="note", category="volunteering", note="帮邻居搬米").get_data(as_text=True)
    assert "协调员确认" in done
    assert grid_worker.get("/awards/").status_code == 403 and grid_worker.get("/counter/").status_code == 403

    pending = coordinator.get("/awards/").get_data(as_text=True)
    assert "帮邻居搬米" in pending
    with app.app_context():
        deed = Signup.get(Signup.note == "帮邻居搬米")
        assert deed.state == Signup.SIGNED_UP and Staff.get_by_id(deed.created_by_id).username == "dm-grid1"
    coordinator.submit(action=f"/awards/signups/{deed.id}/confirm")
    with app.app_context():
        resident = Resident.get(Resident.display_name == "陈桂兰")
    assert 'id="balance">1<' in grid_worker.get(f"/residents/{resident.id}").get_data(as_text=True)
