"""Build knowledge-base content through the services, the way editors do."""

from __future__ import annotations

from ecrm.knowledge.models import ArticleVersion, Category
from ecrm.knowledge.services import do_create_article, do_publish, do_save_draft


def published_article(
    slug: str,
    *,
    title: str,
    body: str = "",
    language: str = "en",
    category: Category | None = None,
    visibility: str = "public",
    body_format: str = "markdown",
    translations: dict[str, tuple[str, str]] | None = None,
) -> ArticleVersion:
    """A published article (actor None = the system); `translations` maps language → (title, body)."""
    version = do_create_article(
        actor=None,
        slug=slug,
        language=language,
        title=title,
        body=body,
        category=category,
        visibility=visibility,
        body_format=body_format,
    )
    live = do_publish(actor=None, article=version.article, language=language)
    for lang, (t, b) in (translations or {}).items():
        do_save_draft(actor=None, article=version.article, language=lang, title=t, body=b)
        do_publish(actor=None, article=version.article, language=lang)
    return live
