"""The public help center: published public articles only, language switch, search, caching."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.urls import reverse

from ecrm.knowledge.services import do_create_category, do_publish, do_save_draft

from .factories import published_article

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def help_content():
    orders = do_create_category(actor=None, slug="orders", name_en="Orders", name_zh="订单", position=1)
    ship = published_article(
        "shipping-times",
        title="Shipping times",
        body="We ship within **48 hours**.",
        category=orders,
        translations={"zh-hans": ("发货时间说明", "付款后48小时内发货。")},
    )
    published_article("escalation", title="Escalation rules", body="Internal only.", visibility="internal")
    return {"orders": orders, "ship": ship}


def test_index_lists_public_articles_by_category_in_each_language(client, help_content):
    en = client.get(reverse("knowledge_public:index"))
    body = en.content.decode()
    assert en.status_code == 200
    assert "Orders" in body and "Shipping times" in body
    assert "Escalation" not in body
    zh = client.get(reverse("knowledge_public:index"), {"lang": "zh-hans"})
    body = zh.content.decode()
    assert "订单" in body and "发货时间说明" in body and "Shipping times" not in body


def test_article_page_renders_live_text_only(client, help_content):
    ship = help_content["ship"]
    do_save_draft(actor=None, article=ship.article, language="en", title="Shipping times", body="Draft text.")
    page = client.get(reverse("knowledge_public:article", args=["shipping-times"]))
    body = page.content.decode()
    assert page.status_code == 200
    assert "<strong>48 hours</strong>" in body and "Draft text." not in body
    assert 'href="?lang=zh-hans"' in body
    zh = client.get(reverse("knowledge_public:article", args=["shipping-times"]), {"lang": "zh-hans"})
    assert "付款后48小时内发货。" in zh.content.decode()


def test_internal_unknown_and_unpublished_articles_are_404(client, help_content):
    from ecrm.knowledge.services import do_create_article

    do_create_article(actor=None, slug="draft-only", language="en", title="Draft only")
    for slug in ("escalation", "draft-only", "no-such-article"):
        assert client.get(reverse("knowledge_public:article", args=[slug])).status_code == 404
    assert client.get(reverse("knowledge_public:category", args=["nope"])).status_code == 404


def test_search_page_highlights_and_hides_internal(client, help_content):
    page = client.get(reverse("knowledge_public:search"), {"q": "when will my order ship"})
    body = page.content.decode()
    assert page.status_code == 200
    assert "<mark>Shipping</mark> times" in body
    zh = client.get(reverse("knowledge_public:search"), {"q": "我的订单什么时候发货", "lang": "zh-hans"})
    assert "<mark>发货</mark>时间说明" in zh.content.decode()
    internal = client.get(reverse("knowledge_public:search"), {"q": "escalation internal"})
    assert "Escalation" not in internal.content.decode()
    assert "Nothing found for" in internal.content.decode()


def test_search_input_is_escaped(client, help_content):
    page = client.get(reverse("knowledge_public:search"), {"q": "<script>alert(1)</script>"})
    body = page.content.decode()
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_pages_are_cached_until_next_publish(
    client, help_content, django_assert_num_queries, django_capture_on_commit_callbacks
):
    url = reverse("knowledge_public:article", args=["shipping-times"])
    first = client.get(url)
    assert "X-Cache" not in first
    with django_assert_num_queries(0):
        second = client.get(url)
    assert second["X-Cache"] == "hit" and second.content == first.content

    ship = help_content["ship"]
    do_save_draft(
        actor=None, article=ship.article, language="en", title="Shipping times", body="Now 24 hours."
    )
    assert "48 hours" in client.get(url).content.decode()  # a draft does not change the public page
    with django_capture_on_commit_callbacks(execute=True):
        do_publish(actor=None, article=ship.article, language="en")
    third = client.get(url)
    assert "X-Cache" not in third and "Now 24 hours." in third.content.decode()


def test_index_query_count_is_flat(client, help_content, django_assert_max_num_queries):
    for i in range(20):
        published_article(f"a-{i}", title=f"Article {i}", category=help_content["orders"])
    with django_assert_max_num_queries(3):
        page = client.get(reverse("knowledge_public:index"))
    assert page.content.decode().count("/help/a/") == 21
