"""The knowledge API: search and read with a read key, create/save/publish with a write key,
field-level errors, and refusals that change nothing."""

from __future__ import annotations

import pytest

from ecrm.knowledge.models import Article, ArticleVersion
from ecrm.knowledge.services import do_create_category

from .factories import published_article

pytestmark = pytest.mark.django_db

BASE = "/api/v1/kb"


def test_create_save_publish_and_read(api, api_read):
    do_create_category(actor=None, slug="orders", name_en="Orders")
    created = api.post(
        f"{BASE}/articles",
        {
            "slug": "shipping-times",
            "language": "en",
            "title": "Shipping times",
            "body": "We ship in **48 hours**.",
            "category": "orders",
        },
    )
    assert created.status_code == 201, created.content
    data = created.json()
    assert (data["slug"], data["category"], data["visibility"], data["created"]) == (
        "shipping-times", "orders", "public", True,
    )  # fmt: skip
    assert [(v["language"], v["number"], v["status"], v["is_live"]) for v in data["versions"]] == [
        ("en", 1, "draft", False)
    ]
    assert data["versions"][0]["body_html"] == "<p>We ship in <strong>48 hours</strong>.</p>\n"

    assert api_read.get(f"{BASE}/articles", q="ship").json() == []  # drafts are not searchable here
    published = api.post(f"{BASE}/articles/shipping-times/en/publish")
    assert published.status_code == 200
    assert published.json()["versions"][0]["is_live"] is True

    saved = api.put(
        f"{BASE}/articles/shipping-times/zh-hans", {"title": "发货时间说明", "body": "付款后48小时内发货。"}
    )
    assert saved.status_code == 200
    api.post(f"{BASE}/articles/shipping-times/zh-hans/publish")

    hits = api_read.get(f"{BASE}/articles", q="我的订单什么时候发货").json()
    assert [(h["slug"], h["language"], h["title"]) for h in hits] == [
        ("shipping-times", "zh-hans", "发货时间说明")
    ]
    assert hits[0]["snippet_html"] == "付款后48小时内<mark>发货</mark>。"
    assert hits[0]["url"] == "/help/a/shipping-times/?lang=zh-hans"
    read = api_read.get(f"{BASE}/articles/shipping-times").json()
    assert [(v["language"], v["is_live"]) for v in read["versions"]] == [("en", True), ("zh-hans", True)]


def test_field_level_errors(api):
    published_article("taken", title="Taken")
    bad = api.post(f"{BASE}/articles", {"slug": "Bad Slug", "language": "fr", "title": ""})
    assert bad.status_code == 422
    assert set(bad.json()["fields"]) == {"slug", "language", "title"}
    dup = api.post(f"{BASE}/articles", {"slug": "taken", "language": "en", "title": "Again"})
    assert dup.status_code == 422 and dup.json()["fields"] == {
        "slug": "An article with this slug already exists."
    }
    cat = api.post(f"{BASE}/articles", {"slug": "new", "language": "en", "title": "T", "category": "none"})
    assert cat.status_code == 422 and cat.json()["fields"] == {"category": "No category with this slug."}
    nodraft = api.post(f"{BASE}/articles/taken/en/publish")
    assert nodraft.status_code == 404 and nodraft.json()["code"] == "no_draft"
    assert api.get(f"{BASE}/articles/nope").status_code == 404
    assert Article.objects.count() == 1


def test_read_key_cannot_write_and_anonymous_is_refused(api_read, api_anon):
    live = published_article("taken", title="Taken", body="Text.")
    assert api_read.post(f"{BASE}/articles", {"slug": "x", "language": "en", "title": "X"}).status_code == 403
    assert api_read.put(f"{BASE}/articles/taken/en", {"title": "Changed"}).status_code == 403
    assert api_read.post(f"{BASE}/articles/taken/en/publish").status_code == 403
    assert api_anon.get(f"{BASE}/articles", q="taken").status_code == 401
    assert list(ArticleVersion.objects.values_list("pk", "title", "status")) == [
        (live.pk, "Taken", "published")
    ]
    assert Article.objects.count() == 1


def test_console_agent_may_draft_but_not_publish(client, cast):
    live = published_article("taken", title="Taken", body="Text.")
    client.force_login(cast["agent_li"])
    saved = client.put(f"{BASE}/articles/taken/en", {"title": "Taken v2"}, content_type="application/json")
    assert saved.status_code == 200
    refused = client.post(f"{BASE}/articles/taken/en/publish")
    assert refused.status_code == 403
    assert list(live.article.versions.order_by("number").values_list("number", "is_live")) == [
        (1, True),
        (2, False),
    ]
    client.force_login(cast["marketer"])
    assert client.get(f"{BASE}/articles", {"q": "taken"}).status_code == 403
