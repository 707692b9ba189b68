"""Console pages of the knowledge base: list and search, create, editor with live preview,
publish, version history, article settings and categories."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from ecrm.core.exceptions import ValidationFailed
from ecrm.core.permissions import has_perm
from ecrm.core.web import console_view

from . import selectors, services
from .models import BodyFormat, Category, Language, Visibility
from .text import render_body


def _category(value) -> Category | None:
    try:
        return Category.objects.filter(pk=int(value)).first()
    except (TypeError, ValueError):
        return None


def _language(value: str) -> str:
    if value not in Language.values:
        raise Http404("Unknown language")
    return value


@console_view("knowledge.edit")
def article_list(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "").strip()[:200]
    language = request.GET.get("language", "")
    language = language if language in Language.values else ""
    context = {"q": q, "language": language, "languages": Language.choices}
    if q:
        context["results"] = selectors.search_articles(
            q, language=language or None, published_only=False, limit=50
        )
    else:
        context["articles"] = list(selectors.articles_for_user(request.user, language=language or None)[:200])
    template = "knowledge/partials/_results.html" if request.htmx else "knowledge/article_list.html"
    return render(request, template, context)


def _form_context(**extra) -> dict:
    return {
        "languages": Language.choices,
        "formats": BodyFormat.choices,
        "visibilities": Visibility.choices,
        "categories": selectors.categories(),
        **extra,
    }


@console_view("knowledge.edit")
def article_create(request: HttpRequest) -> HttpResponse:
    data, errors = {"language": Language.EN, "body_format": BodyFormat.MARKDOWN}, {}
    if request.method == "POST":
        data = request.POST.dict()
        try:
            version = services.do_create_article(
                actor=request.user,
                slug=data.get("slug", ""),
                language=data.get("language", ""),
                title=data.get("title", ""),
                body=data.get("body", ""),
                body_format=data.get("body_format", BodyFormat.MARKDOWN),
                category=_category(data.get("category")),
                visibility=data.get("visibility", Visibility.PUBLIC),
            )
        except ValidationFailed as exc:
            errors = exc.fields
        else:
            messages.success(request, _("Draft saved."))
            return redirect("knowledge:detail", version.article_id)
    status = 422 if errors else 200
    return render(
        request, "knowledge/article_create.html", _form_context(data=data, errors=errors), status=status
    )


@console_view("knowledge.edit")
def article_detail(request: HttpRequest, article_id: int) -> HttpResponse:
    article = selectors.access_article_for_user(request.user, article_id)
    return render(
        request,
        "knowledge/article_detail.html",
        _form_context(
            article=article,
            current=selectors.current_versions(article),
            can_publish=has_perm(request.user, "knowledge.publish"),
        ),
    )


@console_view("knowledge.edit")
def article_edit(request: HttpRequest, article_id: int, language: str) -> HttpResponse:
    article = selectors.access_article_for_user(request.user, article_id)
    language = _language(language)
    current = selectors.current_versions(article)[language]
    base = current["draft"] or current["live"]
    data = {
        "title": base.title if base else "",
        "body": base.body if base else "",
        "body_format": base.body_format if base else BodyFormat.MARKDOWN,
    }
    errors: dict[str, str] = {}
    if request.method == "POST":
        data = request.POST.dict()
        try:
            services.do_save_draft(
                actor=request.user,
                article=article,
                language=language,
                title=data.get("title", ""),
                body=data.get("body", ""),
                body_format=data.get("body_format", BodyFormat.MARKDOWN),
            )
        except ValidationFailed as exc:
            errors = exc.fields
        else:
            messages.success(request, _("Draft saved."))
            return redirect("knowledge:detail", article.pk)
    return render(
        request,
        "knowledge/article_edit.html",
        _form_context(
            article=article,
            language=language,
            data=data,
            errors=errors,
            preview=render_body(data.get("body", ""), data.get("body_format", "markdown")),
            editing_live=current["draft"] is None and current["live"] is not None,
        ),
        status=422 if errors else 200,
    )


@console_view("knowledge.edit")
@require_POST
def preview(request: HttpRequest) -> HttpResponse:
    body_format = request.POST.get("body_format", BodyFormat.MARKDOWN)
    if body_format not in BodyFormat.values:
        body_format = BodyFormat.MARKDOWN
    html = render_body(request.POST.get("body", "")[: services.MAX_BODY_CHARS], body_format)
    return render(request, "knowledge/partials/_preview.html", {"preview": html})


@console_view("knowledge.publish")
@require_POST
def publish(request: HttpRequest, article_id: int, language: str) -> HttpResponse:
    article = selectors.access_article_for_user(request.user, article_id)
    version = services.do_publish(actor=request.user, article=article, language=_language(language))
    messages.success(request, _("Version %(n)s is now live.") % {"n": version.number})
    return redirect("knowledge:detail", article.pk)


@console_view("knowledge.publish")
@require_POST
def article_settings(request: HttpRequest, article_id: int) -> HttpResponse:
    article = selectors.access_article_for_user(request.user, article_id)
    try:
        services.do_update_article(
            actor=request.user,
            article=article,
            category=_category(request.POST.get("category")),
            visibility=request.POST.get("visibility", ""),
        )
    except ValidationFailed as exc:
        messages.error(request, "; ".join(f"{k}: {v}" for k, v in exc.fields.items()))
    else:
        messages.success(request, _("Article settings saved."))
    return redirect("knowledge:detail", article.pk)


@console_view("knowledge.edit")
def history(request: HttpRequest, article_id: int, language: str) -> HttpResponse:
    article = selectors.access_article_for_user(request.user, article_id)
    language = _language(language)
    versions = selectors.version_history(article, language)
    shown = versions[0] if versions else None
    wanted = request.GET.get("v")
    if wanted:
        shown = next((v for v in versions if str(v.number) == wanted), shown)
    return render(
        request,
        "knowledge/history.html",
        {"article": article, "language": language, "versions": versions, "shown": shown},
    )


@console_view("knowledge.edit")
def category_list(request: HttpRequest) -> HttpResponse:
    data, errors = {}, {}
    if request.method == "POST":
        data = request.POST.dict()
        try:
            position = int(data.get("position") or 0)
        except ValueError:
            position = -1
        try:
            if position < 0:
                raise ValidationFailed("Invalid position", fields={"position": "A whole number, 0 or more."})
            services.do_create_category(
                actor=request.user,
                slug=data.get("slug", ""),
                name_en=data.get("name_en", ""),
                name_zh=data.get("name_zh", ""),
                position=position,
            )
        except ValidationFailed as exc:
            errors = exc.fields
        else:
            messages.success(request, _("Category added."))
            return redirect("knowledge:categories")
    return render(
        request,
        "knowledge/categories.html",
        {
            "categories": selectors.categories(),
            "data": data,
            "errors": errors,
            "can_publish": has_perm(request.user, "knowledge.publish"),
        },
        status=422 if errors else 200,
    )
