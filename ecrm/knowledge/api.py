"""REST endpoints of the knowledge base (mounted under /api/v1/kb in config/api.py).

Read keys (and console users who may edit articles) list, search and read; write keys create,
save drafts and publish. Services do the validation that needs the database (slug taken, no draft)."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Query, Router, Status

from ecrm.core.api_auth import actor_of, require_write
from ecrm.core.exceptions import NotFound, PermissionDenied, ValidationFailed
from ecrm.core.models import ApiKey, ApiKeyScope, User
from ecrm.core.permissions import check_perm

from . import selectors, services
from .models import Article, ArticleVersion, Category, VersionStatus
from .schemas import ArticleIn, ArticleOut, DraftIn, LanguageIn, SearchHitOut

router = Router(tags=["knowledge"])


def _require_read(request: HttpRequest) -> None:
    principal = request.auth
    if isinstance(principal, ApiKey):
        if principal.scope == ApiKeyScope.TRACK:
            raise PermissionDenied("A tracking key can only send events.", code="tracking_key")
        return
    if isinstance(principal, User):
        check_perm(principal, "knowledge.edit")
        return
    raise PermissionDenied("Not allowed.")


def _require_kb_write(request: HttpRequest, capability: str) -> None:
    if isinstance(request.auth, User):
        check_perm(request.auth, capability)
        return
    require_write(request)


def _version_out(v: ArticleVersion) -> dict:
    return {
        "language": v.language,
        "number": v.number,
        "status": v.status,
        "is_live": v.is_live,
        "title": v.title,
        "body": v.body,
        "body_format": v.body_format,
        "body_html": v.body_html,
        "published_at": v.published_at,
    }


def article_out(article: Article, created: bool = False) -> dict:
    versions = article.versions.exclude(status=VersionStatus.SUPERSEDED).order_by("language", "number")
    return {
        "id": article.pk,
        "slug": article.slug,
        "category": article.category.slug if article.category_id else None,
        "visibility": article.visibility,
        "versions": [_version_out(v) for v in versions],
        "created": created,
    }


def _article(slug: str) -> Article:
    article = Article.objects.select_related("category").filter(slug=slug).first()
    if article is None:
        raise NotFound("No article with this slug.")
    return article


@router.get("/articles", response=list[SearchHitOut], summary="Search articles (Chinese or English)")
def search(
    request: HttpRequest,
    q: str = Query(..., min_length=1, max_length=500),
    language: LanguageIn | None = None,
    limit: int = Query(10, ge=1, le=100),
):
    """Live articles ranked by BM25 relevance; `snippet_html` is escaped text with `<mark>` hits."""
    _require_read(request)
    return [
        {
            "slug": r.article.slug,
            "language": r.version.language,
            "version": r.version.number,
            "title": r.version.title,
            "score": r.score,
            "snippet_html": str(r.snippet),
            "url": r.public_url,
        }
        for r in selectors.search_articles(q, language=language, limit=limit)
    ]


@router.get("/articles/{slug}", response=ArticleOut, summary="Read an article with its live and draft texts")
def get_article(request: HttpRequest, slug: str):
    _require_read(request)
    return article_out(_article(slug))


@router.post("/articles", response={201: ArticleOut}, summary="Create an article with its first draft")
def create_article(request: HttpRequest, payload: ArticleIn):
    _require_kb_write(request, "knowledge.edit")
    category = None
    if payload.category:
        category = Category.objects.filter(slug=payload.category).first()
        if category is None:
            raise ValidationFailed("Unknown category.", fields={"category": "No category with this slug."})
    version = services.do_create_article(
        actor=actor_of(request),
        slug=payload.slug,
        language=payload.language,
        title=payload.title,
        body=payload.body,
        body_format=payload.body_format,
        category=category,
        visibility=payload.visibility,
    )
    return Status(201, article_out(version.article, created=True))


@router.put("/articles/{slug}/{language}", response=ArticleOut, summary="Save the draft in one language")
def save_draft(request: HttpRequest, slug: str, language: LanguageIn, payload: DraftIn):
    """Updates the open draft, or opens the next version when the latest text is published."""
    _require_kb_write(request, "knowledge.edit")
    article = _article(slug)
    services.do_save_draft(
        actor=actor_of(request), article=article, language=language, **payload.model_dump()
    )
    return article_out(article)


@router.post("/articles/{slug}/{language}/publish", response=ArticleOut, summary="Publish the open draft")
def publish(request: HttpRequest, slug: str, language: LanguageIn):
    _require_kb_write(request, "knowledge.publish")
    article = _article(slug)
    services.do_publish(actor=actor_of(request), article=article, language=language)
    return article_out(article)
