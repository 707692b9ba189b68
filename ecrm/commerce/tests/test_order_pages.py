"""Order pages: the keyset list with order-number search, and the order detail with lines, status
history and returns; commerce.view is required."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from ecrm.commerce.models import OrderStatusChange, Return
from ecrm.commerce.selectors import customer_order_figures
from ecrm.customers.tests.factories import make_customer, make_order

URL = reverse("commerce:orders")


def numbers_on(response) -> list[str]:
    return re.findall(r'href="/commerce/orders/\d+/">([^<]+)</a>', response.content.decode())


@pytest.fixture
def orders(db):
    c = make_customer(first_name="芳", last_name="刘", email="liufang@example.cn")
    return [make_order(c, number=n, days_ago=i) for i, n in enumerate(["SO-100", "SO-1001", "SO-1002", "SO-2000", "WX-1"])]


def test_list_newest_first_with_keyset_pages(login, orders, settings, django_assert_max_num_queries):
    settings.ECRM_PAGE_SIZE = 2
    client = login("analyst")
    with django_assert_max_num_queries(3):
        first = client.get(URL)
    assert numbers_on(first) == ["WX-1", "SO-2000"]
    after = re.search(r'class="next" href="\?after=(\d+)"', first.content.decode()).group(1)
    assert numbers_on(client.get(URL, {"after": after})) == ["SO-1002", "SO-1001"]


def test_search_by_order_number_prefix_and_status(login, orders):
    client = login("agent_li")
    assert numbers_on(client.get(URL, {"q": "SO-100"})) == ["SO-1002", "SO-1001", "SO-100"]
    assert numbers_on(client.get(URL, {"q": "WX-1"})) == ["WX-1"]
    assert "No orders match" in client.get(URL, {"q": "ZZ"}).content.decode()
    assert numbers_on(client.get(URL, {"status": "cancelled"})) == []


def test_order_detail_shows_lines_history_and_returns(login, orders):
    order = orders[1]
    OrderStatusChange.objects.create(order=order, from_status="paid", to_status="shipped", note="SF Express")
    line = order.lines.get()
    Return.objects.create(order=order, order_line=line, quantity=1, reason="Wrong size", refund_amount=Decimal("100.00"))
    response = login("marketer").get(reverse("commerce:order_detail", args=[order.pk]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "SO-1001" in body and "刘芳" in body and "SKU-1" in body
    assert re.findall(r"<strong>(\w+)</strong>", body.split("Status history")[1].split("Returns")[0]) == ["paid", "shipped"]
    assert "Wrong size" in body and "SF Express" in body


def test_nobody_is_refused(login, orders):
    client = login("nobody")
    assert client.get(URL).status_code == 403
    response = client.get(reverse("commerce:order_detail", args=[orders[0].pk]))
    assert response.status_code == 403 and "SO-100" not in response.content.decode()


def test_missing_order_is_404(login, orders):
    assert login("manager").get(reverse("commerce:order_detail", args=[999999])).status_code == 404


def test_figures_are_per_currency_when_mixed(login, cast):
    c = make_customer(first_name="Emma", last_name="Stone", email="emma@example.com")
    make_order(c, total="10.00", currency="USD")
    make_order(c, total="30.00", currency="USD")
    make_order(c, total="80.00", currency="CNY")
    figures = {f["currency"]: f for f in customer_order_figures(c.pk)}
    assert set(figures) == {"USD", "CNY"}
    assert (figures["USD"]["orders"], figures["USD"]["revenue"], figures["USD"]["average_order_value"]) == (
        2, Decimal("40.00"), Decimal("20.00"))
    assert (figures["CNY"]["orders"], figures["CNY"]["revenue"]) == (1, Decimal("80.00"))
