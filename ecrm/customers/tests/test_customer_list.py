"""The customer list: filters, search by name/email/phone/order number, keyset pages, permissions."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from ecrm.customers.models import Customer
from ecrm.customers.selectors import CustomerFilters, customer_list_for_user

from .factories import make_customer, make_order

URL = reverse("customers:list")


def ids_on(response) -> list[int]:
    return [int(x) for x in re.findall(r'href="/customers/(\d+)/"', response.content.decode())]


@pytest.fixture
def shop(db):
    now = timezone.now()
    wang = make_customer(first_name="小明", last_name="王", email="xiaoming@example.cn", phone="13812345678",
                         country="CN", lifecycle_stage="vip", tags=["vip"])
    alice = make_customer(first_name="Alice", last_name="Walker", email="alice.walker@example.com",
                          phone="+44 7700 900123", country="GB", lifecycle_stage="customer")
    alina = make_customer(first_name="Alina", last_name="Li", email="alina@example.com", country="CN")
    bob = make_customer(first_name="Bob", last_name="Brown", email="bob@example.com", country="US", tags=["wholesale"])
    Customer.objects.filter(pk=wang.pk).update(last_seen_at=now - dt.timedelta(days=2))
    Customer.objects.filter(pk=alice.pk).update(last_seen_at=now - dt.timedelta(days=45))
    Customer.objects.filter(pk=alina.pk).update(last_seen_at=now - dt.timedelta(days=400))
    Customer.objects.filter(pk=bob.pk).update(last_seen_at=None)
    make_order(wang, number="SO-88001")
    make_order(bob, number="SO-88002")
    return {"wang": wang, "alice": alice, "alina": alina, "bob": bob}


def test_list_is_newest_first_and_excludes_merged(login, shop):
    Customer.objects.filter(pk=shop["alina"].pk).update(status="merged", merged_into=shop["wang"])
    response = login("agent_li").get(URL)
    assert response.status_code == 200
    assert ids_on(response) == [shop["bob"].pk, shop["alice"].pk, shop["wang"].pk]


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"q": "ali"}, ["alina", "alice"]),  # name prefix, case-folded
        ({"q": "王小"}, ["wang"]),
        ({"q": "alice.walker@example.com"}, ["alice"]),  # exact email
        ({"q": "ALINA@"}, ["alina"]),  # email prefix
        ({"q": "138 1234 5678"}, ["wang"]),  # local phone format -> E.164
        ({"q": "+86-138-1234-5678"}, ["wang"]),
        ({"q": "07700 900123"}, []),  # a UK local number without +44 is read as Chinese: not found
        ({"q": "SO-88002"}, ["bob"]),  # order number
        ({"q": "nobody-like-this"}, []),
        ({"tag": "vip"}, ["wang"]),
        ({"stage": "customer"}, ["alice"]),
        ({"country": "cn"}, ["alina", "wang"]),
        ({"has_orders": "yes"}, ["bob", "wang"]),
        ({"has_orders": "no"}, ["alina", "alice"]),
        ({"last_seen": "7"}, ["wang"]),
        ({"last_seen": "90"}, ["alice", "wang"]),
        ({"last_seen": "-30"}, ["alina", "alice"]),
        ({"last_seen": "-365"}, ["alina"]),
        ({"last_seen": "never"}, ["bob"]),
        ({"country": "CN", "has_orders": "yes"}, ["wang"]),
    ],
)
def test_filters_and_search(login, shop, params, expected):
    response = login("marketer").get(URL, params)
    assert response.status_code == 200
    assert ids_on(response) == [shop[name].pk for name in expected]


def test_empty_state_when_nothing_matches(login, shop):
    body = login("manager").get(URL, {"q": "zzz"}).content.decode()
    assert "No customers match" in body


def test_invalid_filter_is_reported_not_500(login, shop):
    response = login("manager").get(URL, {"stage": "bogus"})
    assert response.status_code == 200
    assert "stage: must be one of" in response.content.decode()


def test_htmx_filter_change_returns_only_the_results_partial(login, shop):
    response = login("manager").get(URL, {"country": "US"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert "<html" not in body and "customer-table" in body
    assert ids_on(response) == [shop["bob"].pk]


def test_keyset_pages_walk_every_customer_once(login, shop, settings):
    settings.ECRM_PAGE_SIZE = 3
    client = login("manager")
    extra = [make_customer(first_name=f"Page{i}", email=f"page{i}@example.com") for i in range(4)]
    expected = sorted([c.pk for c in shop.values()] + [c.pk for c in extra], reverse=True)
    seen, url, pages = [], URL, 0
    while url:
        response = client.get(url)
        seen += ids_on(response)
        pages += 1
        match = re.search(r'class="next" href="\?([^"]*)"', response.content.decode())
        url = f"{URL}?{match.group(1).replace('&amp;', '&')}" if match else None
    assert seen == expected
    assert pages == 3


def test_list_query_count_is_bounded(login, shop, django_assert_max_num_queries):
    client = login("manager")
    for i in range(30):
        make_customer(first_name=f"Bulk{i}", email=f"bulk{i}@example.com", tags=["bulk", f"t{i % 3}"])
    # session, user, customers page, their tags, the tag list for the filter
    with django_assert_max_num_queries(6):
        response = client.get(URL)
    assert len(ids_on(response)) == 34
    with django_assert_max_num_queries(8):
        client.get(URL, {"q": "SO-88001", "tag": "vip", "has_orders": "yes", "last_seen": "30"})


def test_nobody_sees_no_list(login, shop):
    response = login("nobody").get(URL)
    assert response.status_code == 403
    assert "xiaoming" not in response.content.decode()


def test_anonymous_is_sent_to_login(client, shop):
    response = client.get(URL)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_selector_never_counts_the_table(cast, shop, django_assert_num_queries, settings):
    settings.ECRM_PAGE_SIZE = 2
    with django_assert_num_queries(2) as ctx:  # one page query (+1 row), one tags query
        page = customer_list_for_user(cast["analyst"], CustomerFilters())
    assert not any("COUNT(" in q["sql"].upper() for q in ctx.captured_queries)
    assert [c.pk for c in page.customers] == [shop["bob"].pk, shop["alina"].pk]
    assert page.next_after == shop["alina"].pk
