"""Every write to the knowledge base: categories, articles, drafts, publishing, and the search index.

Workflow per article and language: the editor saves a draft (the open draft is updated in place);
publishing makes that draft the live version and supersedes the previous live one; saving again after
publishing opens the next draft. Only live versions and open drafts are kept in the search index.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from ecrm.core.audit import record_audit, snapshot
from ecrm.core.exceptions import NotFound, PermissionDenied, ValidationFailed
from ecrm.core.models import ApiKey, User
from ecrm.core.permissions import check_perm

from .models import (
    Article,
    ArticleVersion,
    BodyFormat,
    Category,
    IndexField,
    Language,
    SearchTerm,
    VersionStatus,
    Visibility,
)
from .text import html_to_text, render_body, tokenize

Actor = User | ApiKey | None

HELP_CENTER_GENERATION_KEY = "knowledge:help-center-generation"
MAX_BODY_CHARS = 200_000
_SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def check_can(actor: Actor, capability: str) -> None:
    """Users need the role's capability; API keys need write scope; None is the system itself."""
    if isinstance(actor, ApiKey):
        if not actor.allows_write():
            raise PermissionDenied("This API key is read-only.", code="read_only_key")
        return
    if actor is None:
        return
    check_perm(actor, capability)


def bump_help_center() -> None:
    """Invalidate every cached help-center page at once (keys carry the generation)."""
    cache.set(HELP_CENTER_GENERATION_KEY, uuid.uuid4().hex, None)


def help_center_generation() -> str:
    gen = cache.get(HELP_CENTER_GENERATION_KEY)
    if gen is None:
        gen = uuid.uuid4().hex
        cache.add(HELP_CENTER_GENERATION_KEY, gen, None)
        gen = cache.get(HELP_CENTER_GENERATION_KEY, gen)
    return gen


# --- validation ------------------------------------------------------------------------------------


def _clean_slug(slug: str, errors: dict[str, str], field: str = "slug") -> str:
    slug = (slug or "").strip().lower()
    if not slug:
        errors[field] = "Required."
    elif len(slug) > 120 or not _SLUG_RE.match(slug):
        errors[field] = "Use lower-case letters, digits and single hyphens (at most 120 characters)."
    return slug


def _clean_text(
    *, language: str, title: str, body: str, body_format: str, errors: dict[str, str]
) -> tuple[str, str, str]:
    if language not in Language.values:
        errors["language"] = f"Must be one of: {', '.join(Language.values)}."
    title = (title or "").strip()
    if not title:
        errors["title"] = "Required."
    elif len(title) > 200:
        errors["title"] = "At most 200 characters."
    body = body or ""
    if len(body) > MAX_BODY_CHARS:
        errors["body"] = f"At most {MAX_BODY_CHARS} characters."
    if body_format not in BodyFormat.values:
        errors["body_format"] = f"Must be one of: {', '.join(BodyFormat.values)}."
    return language, title, body


def _raise(errors: dict[str, str]) -> None:
    if errors:
        raise ValidationFailed("Please correct the highlighted fields.", fields=errors)


# --- index -----------------------------------------------------------------------------------------


def index_version(version: ArticleVersion) -> None:
    """(Re)build the index rows of one version and store its field lengths."""
    SearchTerm.objects.filter(version=version).delete()
    title_terms = [t[:64] for t in tokenize(version.title)]
    body_terms = [t[:64] for t in tokenize(version.body_text)]
    rows = [
        SearchTerm(term=term, version=version, field=IndexField.TITLE, tf=tf)
        for term, tf in Counter(title_terms).items()
    ] + [
        SearchTerm(term=term, version=version, field=IndexField.BODY, tf=tf)
        for term, tf in Counter(body_terms).items()
    ]
    SearchTerm.objects.bulk_create(rows, batch_size=500)
    version.title_terms, version.body_terms = len(title_terms), len(body_terms)
    ArticleVersion.objects.filter(pk=version.pk).update(
        title_terms=version.title_terms, body_terms=version.body_terms
    )


def unindex_version(version: ArticleVersion) -> None:
    SearchTerm.objects.filter(version=version).delete()


# --- categories ------------------------------------------------------------------------------------


def do_create_category(
    *, actor: Actor, slug: str, name_en: str, name_zh: str = "", position: int = 0
) -> Category:
    check_can(actor, "knowledge.publish")
    errors: dict[str, str] = {}
    slug = _clean_slug(slug, errors)
    name_en, name_zh = (name_en or "").strip(), (name_zh or "").strip()
    if not name_en:
        errors["name_en"] = "Required."
    if slug and "slug" not in errors and Category.objects.filter(slug=slug).exists():
        errors["slug"] = "A category with this slug already exists."
    _raise(errors)
    category = Category.objects.create(
        slug=slug, name_en=name_en[:120], name_zh=name_zh[:120], position=position
    )
    record_audit(actor=actor, action="knowledge.category.create", obj=category, after=snapshot(category))
    transaction.on_commit(bump_help_center)
    return category


# --- articles --------------------------------------------------------------------------------------


def _fill(version: ArticleVersion, *, title: str, body: str, body_format: str) -> None:
    version.title = title
    version.body = body
    version.body_format = body_format
    version.body_html = render_body(body, body_format)
    version.body_text = html_to_text(version.body_html)


@transaction.atomic
def do_create_article(
    *,
    actor: Actor,
    slug: str,
    language: str,
    title: str,
    body: str = "",
    body_format: str = BodyFormat.MARKDOWN,
    category: Category | None = None,
    visibility: str = Visibility.PUBLIC,
) -> ArticleVersion:
    """A new article with its first draft (version 1) in `language`."""
    check_can(actor, "knowledge.edit")
    errors: dict[str, str] = {}
    slug = _clean_slug(slug, errors)
    language, title, body = _clean_text(
        language=language, title=title, body=body, body_format=body_format, errors=errors
    )
    if visibility not in Visibility.values:
        errors["visibility"] = f"Must be one of: {', '.join(Visibility.values)}."
    if slug and "slug" not in errors and Article.objects.filter(slug=slug).exists():
        errors["slug"] = "An article with this slug already exists."
    _raise(errors)
    user = actor if isinstance(actor, User) else None
    article = Article.objects.create(slug=slug, category=category, visibility=visibility, created_by=user)
    version = ArticleVersion(article=article, language=language, number=1, created_by=user)
    _fill(version, title=title, body=body, body_format=body_format)
    version.save()
    index_version(version)
    record_audit(
        actor=actor,
        action="knowledge.article.create",
        obj=article,
        after={**snapshot(article), "language": language, "title": title},
    )
    return version


@transaction.atomic
def do_update_article(
    *, actor: Actor, article: Article, category: Category | None, visibility: str
) -> Article:
    """Category and visibility apply to every language and version at once (a publishing decision)."""
    check_can(actor, "knowledge.publish")
    if visibility not in Visibility.values:
        raise ValidationFailed(
            "Please correct the highlighted fields.",
            fields={"visibility": f"Must be one of: {', '.join(Visibility.values)}."},
        )
    article = Article.objects.select_for_update().get(pk=article.pk)
    before = snapshot(article, ["category", "visibility"])
    article.category, article.visibility = category, visibility
    article.save(update_fields=["category", "visibility", "updated_at"])
    record_audit(
        actor=actor,
        action="knowledge.article.update",
        obj=article,
        before=before,
        after=snapshot(article, ["category", "visibility"]),
    )
    transaction.on_commit(bump_help_center)
    return article


@transaction.atomic
def do_save_draft(
    *,
    actor: Actor,
    article: Article,
    language: str,
    title: str,
    body: str = "",
    body_format: str = BodyFormat.MARKDOWN,
) -> ArticleVersion:
    """Save the text of `article` in `language`: updates the open draft, or opens the next version
    when the latest one is published (the live text never changes under readers' feet)."""
    check_can(actor, "knowledge.edit")
    errors: dict[str, str] = {}
    language, title, body = _clean_text(
        language=language, title=title, body=body, body_format=body_format, errors=errors
    )
    _raise(errors)
    article = Article.objects.select_for_update().get(pk=article.pk)
    latest = article.versions.filter(language=language).order_by("-number").first()
    user = actor if isinstance(actor, User) else None
    if latest is not None and latest.is_draft:
        version, before = latest, snapshot(latest, ["title", "body", "body_format"])
    else:
        number = (latest.number + 1) if latest else 1
        version, before = (
            ArticleVersion(article=article, language=language, number=number, created_by=user),
            None,
        )
    _fill(version, title=title, body=body, body_format=body_format)
    version.save()
    index_version(version)
    article.save(update_fields=["updated_at"])
    record_audit(
        actor=actor,
        action="knowledge.draft.save",
        obj=version,
        before=before,
        after=snapshot(version, ["title", "body", "body_format", "number", "language"]),
    )
    return version


@transaction.atomic
def do_publish(*, actor: Actor, article: Article, language: str) -> ArticleVersion:
    """Make the open draft in `language` the live version; the previous live one is superseded."""
    check_can(actor, "knowledge.publish")
    article = Article.objects.select_for_update().get(pk=article.pk)
    draft = article.versions.filter(language=language, status=VersionStatus.DRAFT).order_by("-number").first()
    if draft is None:
        raise NotFound("There is no draft to publish in this language.", code="no_draft")
    previous = article.versions.filter(language=language, is_live=True).first()
    if previous is not None:
        ArticleVersion.objects.filter(pk=previous.pk).update(is_live=False, status=VersionStatus.SUPERSEDED)
        unindex_version(previous)
    user = actor if isinstance(actor, User) else None
    draft.status, draft.is_live = VersionStatus.PUBLISHED, True
    draft.published_at, draft.published_by = timezone.now(), user
    draft.save(update_fields=["status", "is_live", "published_at", "published_by", "updated_at"])
    article.save(update_fields=["updated_at"])
    record_audit(
        actor=actor,
        action="knowledge.publish",
        obj=draft,
        before={"live_version": previous.number if previous else None},
        after={"live_version": draft.number, "language": language},
    )
    transaction.on_commit(bump_help_center)
    return draft
