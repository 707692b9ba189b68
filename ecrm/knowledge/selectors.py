"""Reads of the knowledge base: search (BM25 over the portable index), suggestions for agents,
console lists with permission rules, and the public help center's published, public articles.

Ranking is computed in Python from integer rows (term frequencies, document frequencies, lengths)
fetched with plain SQL, so SQLite and PostgreSQL return identical scores and order.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count, Prefetch, QuerySet, Sum
from django.urls import reverse
from django.utils.safestring import SafeString

from ecrm.core.exceptions import NotFound
from ecrm.core.permissions import check_perm

from .models import (
    Article,
    ArticleVersion,
    Category,
    IndexField,
    Language,
    SearchTerm,
    VersionStatus,
    Visibility,
)
from .text import highlight, key_terms, snippet, tokenize

# BM25 parameters (Robertson & Zaragoza, 2009); a title occurrence counts as TITLE_WEIGHT body ones
# (a BM25F-style field weighting folded into one pseudo-document).
K1 = 1.2
B = 0.75
TITLE_WEIGHT = 3
MAX_QUERY_TERMS = 32


@dataclass(frozen=True)
class SearchResult:
    """One ranked hit: the article, the matching version, its BM25 score and highlighted text."""

    article: Article
    version: ArticleVersion
    score: float
    snippet: SafeString
    title_html: SafeString

    @property
    def public_url(self) -> str:
        return public_article_path(self.version)


def _scope(*, language: str | None, published_only: bool, public_only: bool) -> QuerySet[ArticleVersion]:
    qs = ArticleVersion.objects.all()
    qs = qs.filter(is_live=True) if published_only else qs.exclude(status=VersionStatus.SUPERSEDED)
    if language:
        qs = qs.filter(language=language)
    if public_only:
        qs = qs.filter(article__visibility=Visibility.PUBLIC)
    return qs


def _rank(terms: list[str], scope: QuerySet[ArticleVersion]) -> list[tuple[float, int]]:
    """[(score, version_id)] best first, for versions in `scope` matching any of `terms`."""
    if not terms:
        return []
    stats = scope.aggregate(n=Count("id"), t=Sum("title_terms"), b=Sum("body_terms"))
    n_docs = stats["n"] or 0
    if not n_docs:
        return []
    avgdl = (TITLE_WEIGHT * (stats["t"] or 0) + (stats["b"] or 0)) / n_docs or 1.0
    postings = SearchTerm.objects.filter(term__in=terms, version__in=scope.values("id"))
    rows = list(postings.values_list("version_id", "term", "field", "tf"))
    if not rows:
        return []
    df: dict[str, set[int]] = defaultdict(set)
    wtf: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for version_id, term, field, tf in rows:
        df[term].add(version_id)
        wtf[version_id][term] += tf * (TITLE_WEIGHT if field == IndexField.TITLE else 1)
    lengths = {
        pk: TITLE_WEIGHT * t + b
        for pk, t, b in ArticleVersion.objects.filter(pk__in=list(wtf))
        .values_list("pk", "title_terms", "body_terms")
        .order_by()
    }
    idf = {t: math.log(1 + (n_docs - len(v) + 0.5) / (len(v) + 0.5)) for t, v in df.items()}
    scored = []
    for version_id, per_term in wtf.items():
        norm = K1 * (1 - B + B * lengths[version_id] / avgdl)
        score = sum(idf[t] * f * (K1 + 1) / (f + norm) for t, f in sorted(per_term.items()))
        scored.append((round(score, 9), version_id))
    scored.sort(key=lambda pair: (-pair[0], pair[1]))
    return scored


def _search_terms(
    terms: list[str], *, language: str | None, published_only: bool, public_only: bool, limit: int
) -> list[SearchResult]:
    terms = list(dict.fromkeys(terms))[:MAX_QUERY_TERMS]
    ranked = _rank(terms, _scope(language=language, published_only=published_only, public_only=public_only))
    # One hit per article: the best-scoring version (e.g. a draft and the live text both match).
    versions = ArticleVersion.objects.filter(
        pk__in=[vid for _, vid in ranked[: limit * 4 + 10]]
    ).select_related("article", "article__category")
    by_id = {v.pk: v for v in versions}
    term_set = set(terms)
    results: list[SearchResult] = []
    seen: set[int] = set()
    for score, version_id in ranked:
        version = by_id.get(version_id)
        if version is None or version.article_id in seen:
            continue
        seen.add(version.article_id)
        results.append(
            SearchResult(
                article=version.article,
                version=version,
                score=score,
                snippet=snippet(version.body_text, term_set),
                title_html=highlight(version.title, term_set),
            )
        )
        if len(results) >= limit:
            break
    return results


def search_articles(
    q: str,
    *,
    language: str | None = None,
    published_only: bool = True,
    limit: int = 10,
    public_only: bool = False,
) -> list[SearchResult]:
    """Ranked articles for a free-text query in Chinese, English or both.

    `published_only` searches live versions only (otherwise open drafts too, for editors);
    `public_only` leaves out internal articles (the help center and the portal set it)."""
    limit = max(1, min(int(limit), 100))
    return _search_terms(
        tokenize((q or "")[:500]),
        language=language or None,
        published_only=published_only,
        public_only=public_only,
        limit=limit,
    )


def suggest_articles_for_text(
    text: str, *, language: str | None = None, limit: int = 5
) -> list[SearchResult]:
    """Live articles (internal ones included: the reader is an agent) matching the key terms of a
    customer's message, e.g. '我的订单什么时候发货' → 发货, 订单, 时候."""
    terms = key_terms((text or "")[:5000], limit=12)
    return _search_terms(
        terms, language=language or None, published_only=True, public_only=False, limit=max(1, min(limit, 20))
    )


def public_article_path(version: ArticleVersion) -> str:
    return reverse("knowledge_public:article", args=[version.article.slug]) + f"?lang={version.language}"


def article_text_for_reply(version: ArticleVersion, *, base_url: str | None = None) -> str:
    """Plain text an agent can paste into a reply: title, body, and the help-center link when the
    article is public and this text is live. `base_url` defaults to settings.ECRM_PUBLIC_URL."""
    parts = [version.title, version.body_text]
    if version.article.visibility == Visibility.PUBLIC and version.is_live:
        base = (base_url if base_url is not None else getattr(settings, "ECRM_PUBLIC_URL", "")).rstrip("/")
        parts.append(base + public_article_path(version))
    return "\n\n".join(p for p in parts if p)


# --- console ---------------------------------------------------------------------------------------


def articles_for_user(
    user, *, language: str | None = None, category_id: int | None = None
) -> QuerySet[Article]:
    """Every article, for editors, with its versions prefetched (two queries whatever the count)."""
    check_perm(user, "knowledge.edit")
    qs = Article.objects.select_related("category").prefetch_related(
        Prefetch("versions", queryset=ArticleVersion.objects.exclude(status=VersionStatus.SUPERSEDED))
    )
    if language:
        qs = qs.filter(versions__language=language).distinct()
    if category_id:
        qs = qs.filter(category_id=category_id)
    return qs


def access_article_for_user(user, article_id: int) -> Article:
    check_perm(user, "knowledge.edit")
    article = Article.objects.select_related("category").filter(pk=article_id).first()
    if article is None:
        raise NotFound("No such article.")
    return article


def version_history(article: Article, language: str) -> list[ArticleVersion]:
    return list(article.versions.filter(language=language).select_related("created_by", "published_by"))


def current_versions(article: Article) -> dict[str, dict[str, ArticleVersion | None]]:
    """Per language: the live version and the open draft (either may be missing)."""
    out: dict[str, dict[str, ArticleVersion | None]] = {
        lang: {"live": None, "draft": None} for lang in Language.values
    }
    for version in article.versions.exclude(status=VersionStatus.SUPERSEDED):
        slot = "live" if version.is_live else "draft"
        out[version.language][slot] = version
    return out


def categories() -> list[Category]:
    return list(Category.objects.all())


# --- public help center ----------------------------------------------------------------------------


def _public_live(language: str) -> QuerySet[ArticleVersion]:
    return ArticleVersion.objects.filter(
        is_live=True, language=language, article__visibility=Visibility.PUBLIC
    ).select_related("article", "article__category")


def help_center_index(language: str) -> list[tuple[Category | None, list[ArticleVersion]]]:
    """Published public articles in `language`, grouped by category in category order."""
    groups: dict[int | None, list[ArticleVersion]] = defaultdict(list)
    for version in _public_live(language).order_by("title", "id"):
        groups[version.article.category_id].append(version)
    out: list[tuple[Category | None, list[ArticleVersion]]] = [
        (cat, groups[cat.pk]) for cat in Category.objects.all() if groups.get(cat.pk)
    ]
    if groups.get(None):
        out.append((None, groups[None]))
    return out


def public_category(slug: str, language: str) -> tuple[Category, list[ArticleVersion]]:
    category = Category.objects.filter(slug=slug).first()
    if category is None:
        raise NotFound("No such category.")
    return category, list(_public_live(language).filter(article__category=category).order_by("title", "id"))


def public_article(slug: str, language: str) -> tuple[ArticleVersion, list[str]]:
    """The live public text of an article in `language` (falling back to any language it exists in),
    and the languages it is available in."""
    versions = list(
        ArticleVersion.objects.filter(
            is_live=True, article__slug=slug, article__visibility=Visibility.PUBLIC
        ).select_related("article", "article__category")
    )
    if not versions:
        raise NotFound("No such article.")
    by_lang = {v.language: v for v in versions}
    chosen = by_lang.get(language) or by_lang.get(Language.EN) or versions[0]
    return chosen, sorted(by_lang)
