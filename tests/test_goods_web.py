"""The goods pages: add, edit, receive and correct stock; low stock marked; clerks kept out."""

import community_factory as make
from test_web_staff import Browser

from catalog.goods import create_goods
from catalog.models import Goods, StockMovement


def test_a_coordinator_stocks_the_shelf(client, app):
    with app.app_context():
        place = make.build_place()
        make.coordinator(place.north, username="shelf")
    browser = Browser(client)
    browser.login("shelf")
    form = {"community": str(place.north.id), "name_zh": "食用油", "name_en": "Cooking oil", "price": "1,5",
            "limit_quantity": "1", "limit_period": "month"}
    bad = browser.post("/goods/new", {**form, "price": "1.234"}, page="/goods/new")
    assert "积分最多两位小数" in bad.get_data(as_text=True)
    assert browser.post("/goods/new", form, page="/goods/new").status_code == 302
    oil = Goods.get(Goods.name_en == "Cooking oil")
    assert (oil.price, oil.limit_quantity, oil.limit_period) == (150, 1, "month")
    browser.post(f"/goods/{oil.id}/stock", {"kind": "receive", "quantity": "12"}, page="/goods/")
    no_reason = browser.post(f"/goods/{oil.id}/stock", {"kind": "adjust", "quantity": "-2"}, page="/goods/",
                             follow_redirects=True)
    assert "部分信息缺失或无效" in no_reason.get_data(as_text=True)
    browser.post(f"/goods/{oil.id}/stock", {"kind": "adjust", "quantity": "-9", "reason": "过期"}, page="/goods/")
    assert Goods.get_by_id(oil.id).stock == 3
    assert [m.quantity for m in StockMovement.select().order_by(StockMovement.id)] == [12, -9]
    page = client.get("/goods/").get_data(as_text=True)
    assert 'class="low-stock"' in page
    edit = {**form, "price": "2", "active": ""}
    assert browser.post(f"/goods/{oil.id}/edit", edit, page=f"/goods/{oil.id}/edit").status_code == 302
    assert (Goods.get_by_id(oil.id).price, Goods.get_by_id(oil.id).active) == (200, False)


def test_clerks_and_other_communities_stay_out(client, app):
    with app.app_context():
        place = make.build_place()
        make.clerk(place.north, username="till2")
        make.coordinator(place.south, username="south2")
        oil = create_goods(make.coordinator(place.north), place.north, "油", "Oil", 100)
    browser = Browser(client)
    browser.login("till2")
    assert client.get("/goods/").status_code == 403
    browser.post("/logout", page="/")
    browser.login("south2")
    assert client.get(f"/goods/{oil.id}/edit").status_code == 403
    assert browser.post(f"/goods/{oil.id}/stock", {"kind": "receive", "quantity": "5"}, page="/").status_code == 403
    assert Goods.get_by_id(oil.id).stock == 0
