"""Drafts, publishing and history through the console pages, with the permission rules:
agents write drafts, managers publish; the wrong role is refused and nothing changes."""

from __future__ import annotations

import pytest
from django.urls import reverse

from ecrm.core.models import AuditLog
from ecrm.knowledge.models import Article, ArticleVersion, Category, VersionStatus

from .factories import published_article

pytestmark = pytest.mark.django_db


def _create(client, **overrides):
    data = {
        "slug": "shipping-times",
        "language": "en",
        "title": "Shipping times",
        "body": "We ship **within 48 hours**.",
        "body_format": "markdown",
        "visibility": "public",
        "category": "",
    }
    data.update(overrides)
    return client.post(reverse("knowledge:create"), data)


def test_agent_creates_draft_and_manager_publishes(login, client, cast):
    response = _create(login("agent_li"))
    article = Article.objects.get(slug="shipping-times")
    assert response.status_code == 302 and response["Location"] == reverse(
        "knowledge:detail", args=[article.pk]
    )
    draft = article.versions.get()
    assert (draft.number, draft.status, draft.is_live, draft.created_by) == (
        1,
        "draft",
        False,
        cast["agent_li"],
    )
    assert draft.body_html == "<p>We ship <strong>within 48 hours</strong>.</p>\n"

    # the agent may not publish: refused, nothing changed
    response = client.post(reverse("knowledge:publish", args=[article.pk, "en"]))
    assert response.status_code == 403
    draft.refresh_from_db()
    assert (draft.status, draft.is_live) == ("draft", False)
    assert not AuditLog.objects.filter(action="knowledge.publish").exists()

    login("manager")
    response = client.post(reverse("knowledge:publish", args=[article.pk, "en"]))
    assert response.status_code == 302
    draft.refresh_from_db()
    assert (draft.status, draft.is_live, draft.published_by) == ("published", True, cast["manager"])
    assert AuditLog.objects.filter(action="knowledge.publish", actor=cast["manager"]).count() == 1


def test_editing_published_article_opens_new_draft_and_keeps_history(login, client):
    live = published_article("shipping-times", title="Shipping times", body="Old text.")
    article = live.article
    login("agent_li")
    url = reverse("knowledge:edit", args=[article.pk, "en"])
    page = client.get(url)
    assert page.status_code == 200 and "Old text." in page.content.decode()
    assert "Saving creates a new draft" in page.content.decode()

    client.post(url, {"title": "Shipping times", "body": "New text.", "body_format": "markdown"})
    client.post(url, {"title": "Shipping times (2025)", "body": "Newer text.", "body_format": "markdown"})
    versions = list(article.versions.order_by("number").values_list("number", "status", "is_live", "body"))
    assert versions == [(1, "published", True, "Old text."), (2, "draft", False, "Newer text.")]

    login("manager")
    client.post(reverse("knowledge:publish", args=[article.pk, "en"]))
    versions = list(article.versions.order_by("number").values_list("number", "status", "is_live"))
    assert versions == [(1, "superseded", False), (2, "published", True)]

    history = client.get(reverse("knowledge:history", args=[article.pk, "en"]) + "?v=1")
    body = history.content.decode()
    assert history.status_code == 200
    assert "Old text." in body and "v2" in body and "Superseded" in body


def test_translation_is_a_separate_series(login, client):
    live = published_article("shipping-times", title="Shipping times", body="English.")
    login("manager")
    client.post(
        reverse("knowledge:edit", args=[live.article_id, "zh-hans"]),
        {"title": "发货时间说明", "body": "付款后48小时内发货。", "body_format": "markdown"},
    )
    client.post(reverse("knowledge:publish", args=[live.article_id, "zh-hans"]))
    rows = ArticleVersion.objects.filter(article=live.article, is_live=True).order_by("language")
    assert [(v.language, v.number, v.title) for v in rows] == [
        ("en", 1, "Shipping times"),
        ("zh-hans", 1, "发货时间说明"),
    ]


def test_invalid_input_shows_field_errors_and_saves_nothing(login, client):
    login("agent_li")
    response = _create(client, slug="Bad Slug!", title="", language="fr")
    assert response.status_code == 422
    body = response.content.decode()
    assert "Use lower-case letters, digits and single hyphens" in body
    assert "Must be one of: en, zh-hans." in body
    assert "Required." in body
    assert Article.objects.count() == 0
    # duplicate slug
    published_article("taken", title="Taken")
    response = _create(client, slug="taken")
    assert response.status_code == 422 and "already exists" in response.content.decode()
    assert Article.objects.count() == 1


def test_hostile_html_is_sanitised_in_editor_preview_and_storage(login, client):
    login("agent_li")
    _create(
        client,
        body='<p>Hi<img src="x" onerror="alert(1)"><script>alert(2)</script><a href="javascript:alert(3)">x</a></p>',
        body_format="html",
    )
    version = ArticleVersion.objects.get()
    assert version.body_html == '<p>Hi<img src="x"><a rel="noopener noreferrer nofollow">x</a></p>'
    preview = client.post(
        reverse("knowledge:preview"), {"body": "<svg onload=alert(1)>**b**", "body_format": "html"}
    )
    assert preview.status_code == 200
    assert "onload" not in preview.content.decode() and "<svg" not in preview.content.decode()
    md = client.post(reverse("knowledge:preview"), {"body": "# Title\n\n*x*", "body_format": "markdown"})
    assert "<h1>Title</h1>" in md.content.decode() and "<em>x</em>" in md.content.decode()


@pytest.mark.parametrize("who", ["marketer", "analyst", "nobody"])
def test_roles_without_knowledge_rights_are_refused(login, client, who):
    live = published_article("shipping-times", title="Shipping times", body="Text.")
    login(who)
    assert client.get(reverse("knowledge:list")).status_code == 403
    assert _create(client, slug="other").status_code == 403
    response = client.post(
        reverse("knowledge:edit", args=[live.article_id, "en"]),
        {"title": "Hacked", "body": "x", "body_format": "markdown"},
    )
    assert response.status_code == 403
    assert list(ArticleVersion.objects.values_list("title", "status")) == [
        ("Shipping times", VersionStatus.PUBLISHED)
    ]
    assert Article.objects.count() == 1


def test_agent_cannot_change_settings_or_add_categories(login, client):
    live = published_article("shipping-times", title="Shipping times", body="Text.")
    login("agent_bob")
    response = client.post(reverse("knowledge:settings", args=[live.article_id]), {"visibility": "internal"})
    assert response.status_code == 403
    live.article.refresh_from_db()
    assert live.article.visibility == "public"
    response = client.post(reverse("knowledge:categories"), {"slug": "orders", "name_en": "Orders"})
    assert response.status_code == 403
    assert Category.objects.count() == 0


def test_manager_manages_categories_and_settings(login, client):
    live = published_article("shipping-times", title="Shipping times", body="Text.")
    login("manager")
    response = client.post(
        reverse("knowledge:categories"),
        {"slug": "orders", "name_en": "Orders", "name_zh": "订单", "position": "1"},
    )
    assert response.status_code == 302
    category = Category.objects.get()
    assert (category.slug, category.name_en, category.name_zh, category.position) == (
        "orders",
        "Orders",
        "订单",
        1,
    )
    bad = client.post(reverse("knowledge:categories"), {"slug": "orders", "name_en": "", "position": "x"})
    assert bad.status_code == 422 and Category.objects.count() == 1
    client.post(
        reverse("knowledge:settings", args=[live.article_id]),
        {"visibility": "internal", "category": category.pk},
    )
    live.article.refresh_from_db()
    assert (live.article.visibility, live.article.category) == ("internal", category)


def test_list_and_search_pages(login, client, django_assert_max_num_queries):
    for i in range(15):
        published_article(
            f"article-{i}", title=f"Article {i}", body="Body.", translations={"zh-hans": ("文章", "内容")}
        )
    login("agent_li")
    with django_assert_max_num_queries(12):
        page = client.get(reverse("knowledge:list"))
    assert page.status_code == 200
    assert page.content.decode().count('href="/kb/') >= 15
    found = client.get(reverse("knowledge:list"), {"q": "article 7"})
    body = found.content.decode()
    assert found.status_code == 200
    # every article matches 'article'; the one with '7' in its title ranks first
    assert body.index("<mark>Article</mark> <mark>7</mark>") < body.index("<mark>Article</mark> 1<")
