"""The goods pages: add, edit, receive and correct stock; low stock marked; clerks kept out."""

import community_factory as make
from webforms import Browser

from catalog.goods import create_goods
from catalog.models import Goods, StockMovement


def change_stock(browser, goods, follow_redirects=True, **filled):
    """On the goods page: the stock change of one row (kind, quantity, reason), saved."""
    browser.get("/goods/")
    return browser.submit(action=f"/goods/{goods.id}/stock", follow_redirects=follow_redirects, **filled)


def test_a_coordinator_stocks_the_shelf(client, app):
    with app.app_context():
        place = make.build_place()
        make.coordinator(place.north, username="shelf")
    browser = Browser(client)
    browser.login("shelf")
    form = {"community": place.north.id, "name_zh": "食用油", "name_en": "Cooking oil", "price": "1,5",
            "limit_quantity": "1", "limit_period": "month"}
    browser.get("/goods/new")
    bad = browser.submit(has="name_zh", **{**form, "price": "1.234"})
    assert "积分最多两位小数" in bad.get_data(as_text=True)
    assert browser.submit(has="name_zh", follow_redirects=False, **form).status_code == 302
    oil = Goods.get(Goods.name_en == "Cooking oil")
    assert (oil.price, oil.limit_quantity, oil.limit_period) == (150, 1, "month")
    change_stock(browser, oil, kind="receive", quantity="12")
    no_reason = change_stock(browser, oil, kind="adjust", quantity="-2")
    assert "部分信息缺失或无效" in no_reason.get_data(as_text=True)
    change_stock(browser, oil, kind="adjust", quantity="-9", reason="过期")
    assert Goods.get_by_id(oil.id).stock == 3
    assert [m.quantity for m in StockMovement.select().order_by(StockMovement.id)] == [12, -9]
    page = browser.get("/goods/").get_data(as_text=True)
    assert 'class="low-stock"' in page
    browser.get(f"/goods/{oil.id}/edit")
    edit = {**form, "price": "2", "active": False}
    assert browser.submit(has="name_zh", follow_redirects=False, **edit).status_code == 302
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
    browser.logout()
    browser.login("south2")
    assert client.get(f"/goods/{oil.id}/edit").status_code == 403
    # South's goods page has no row for north's oil: the post is made by hand.
    assert f"/goods/{oil.id}/stock" not in browser.get("/goods/").get_data(as_text=True)
    stock = {"csrf_token": browser.token(), "kind": "receive", "quantity": "5"}
    assert client.post(f"/goods/{oil.id}/stock", data=stock).status_code == 403
    assert Goods.get_by_id(oil.id).stock == 0
