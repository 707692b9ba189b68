"""The public help center (no login): published, public articles only, in the reader's language,
with search. Pages are cached per language and URL until the next publish (generation key)."""

from __future__ import annotations

import functools
import hashlib

from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.views.decorators.http import require_GET

from ecrm.core.exceptions import NotFound

from . import selectors
from .models import Language
from .services import help_center_generation

CACHE_SECONDS = 600


def reader_language(request: HttpRequest) -> str:
    """`?lang=` when given and known, else the request's UI language."""
    lang = request.GET.get("lang", "")
    if lang in Language.values:
        return lang
    return Language.ZH if (translation.get_language() or "").lower().startswith("zh") else Language.EN


def cached_public_page(view):
    """Cache the rendered page per language and full URL; a publish changes the generation key.
    Only for pages without per-user content (no CSRF token, no session)."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        lang = reader_language(request)
        raw = f"{help_center_generation()}|{lang}|{request.get_full_path()}"
        key = "kb:page:" + hashlib.sha256(raw.encode()).hexdigest()
        hit = cache.get(key)
        if hit is not None:
            response = HttpResponse(hit, content_type="text/html; charset=utf-8")
            response["X-Cache"] = "hit"
            return response
        with translation.override(lang):
            try:
                response = view(request, lang, *args, **kwargs)
            except NotFound as exc:
                raise Http404(exc.message) from exc
        if response.status_code == 200:
            cache.set(key, response.content, CACHE_SECONDS)
        return response

    return wrapper


def _context(request: HttpRequest, lang: str, **extra) -> dict:
    return {"lang": lang, "languages": Language.choices, "q": "", **extra}


@require_GET
@cached_public_page
def index(request: HttpRequest, lang: str) -> HttpResponse:
    return render(
        request,
        "knowledge/public/index.html",
        _context(request, lang, groups=selectors.help_center_index(lang)),
    )


@require_GET
@cached_public_page
def category(request: HttpRequest, lang: str, slug: str) -> HttpResponse:
    cat, versions = selectors.public_category(slug, lang)
    return render(
        request,
        "knowledge/public/category.html",
        _context(request, lang, category=cat, category_name=cat.name_for(lang), versions=versions),
    )


@require_GET
@cached_public_page
def article(request: HttpRequest, lang: str, slug: str) -> HttpResponse:
    version, available = selectors.public_article(slug, lang)
    category_name = version.article.category.name_for(lang) if version.article.category else ""
    return render(
        request,
        "knowledge/public/article.html",
        _context(request, lang, version=version, available=available, category_name=category_name),
    )


@require_GET
@cached_public_page
def search(request: HttpRequest, lang: str) -> HttpResponse:
    q = request.GET.get("q", "").strip()[:200]
    results = selectors.search_articles(q, language=lang, public_only=True, limit=20) if q else []
    return render(
        request, "knowledge/public/search.html", {**_context(request, lang), "q": q, "results": results}
    )
