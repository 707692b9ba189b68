"""Console pages of webhooks (Settings -> Webhooks, admins): endpoints, the delivery log with replay,
and the outbound allow-list editor. Thin: parse, call one service, render."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from ecrm.core.events import EVENT_NAMES
from ecrm.core.exceptions import ValidationFailed
from ecrm.core.web import console_view, flash_error

from . import selectors, services
from .models import DeliveryStatus

CAP = "webhooks.manage"
ACTIONS = {"test", "rotate", "reveal", "enable", "disable", "delete"}


def event_choices() -> list[tuple[str, list[str]]]:
    """The event picker: "*", then per subject the "prefix." choice and its exact names."""
    groups: dict[str, list[str]] = {}
    for name in EVENT_NAMES:
        if name in services.NOT_SENT:
            continue
        groups.setdefault(name.split(".", 1)[0] + ".", []).append(name)
    return list(groups.items())


def _endpoint_form(request: HttpRequest) -> dict:
    return {
        "name": request.POST.get("name", ""),
        "url": request.POST.get("url", ""),
        "events": request.POST.getlist("events"),
        "is_active": request.POST.get("is_active") == "1",
    }


@console_view(CAP)
def endpoint_list(request: HttpRequest) -> HttpResponse:
    context = {
        "endpoints": selectors.list_endpoints(request.user),
        "allowed": selectors.list_allowed_destinations(request.user),
        "env_allowlist": services.env_allowlist(),
        "errors": {},
    }
    return render(request, "webhooks/endpoints.html", context)


@console_view(CAP)
def endpoint_new(request: HttpRequest) -> HttpResponse:
    form = {"name": "", "url": "https://", "events": [], "is_active": True}
    errors: dict[str, str] = {}
    if request.method == "POST":
        form = _endpoint_form(request)
        try:
            endpoint = services.do_create_endpoint(actor=request.user, **form)
        except ValidationFailed as exc:
            errors = exc.fields or {"form": exc.message}
        else:
            messages.success(request, _("Endpoint created. Copy its signing secret now."))
            return _detail(request, endpoint, new_secret=endpoint.secret)
    context = {"form": form, "errors": errors, "choices": event_choices(), "endpoint": None}
    return render(request, "webhooks/endpoint_form.html", context, status=422 if errors else 200)


def _detail(request: HttpRequest, endpoint, *, new_secret: str = "", form=None, errors=None, status=200):
    form = form or {
        "name": endpoint.name,
        "url": endpoint.url,
        "events": endpoint.events,
        "is_active": endpoint.is_active,
    }
    recent = selectors.list_deliveries(request.user, endpoint_id=endpoint.pk)[:20]
    context = {
        "endpoint": endpoint, "form": form, "errors": errors or {}, "choices": event_choices(),
        "new_secret": new_secret, "recent": recent,
    }  # fmt: skip
    return render(request, "webhooks/endpoint_detail.html", context, status=status)


@console_view(CAP)
def endpoint_detail(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = selectors.access_endpoint_for_user(request.user, endpoint_id)
    if request.method == "POST":
        form = _endpoint_form(request)
        try:
            endpoint = services.do_update_endpoint(actor=request.user, endpoint=endpoint, **form)
        except ValidationFailed as exc:
            return _detail(
                request, endpoint, form=form, errors=exc.fields or {"form": exc.message}, status=422
            )
        messages.success(request, _("Saved."))
        return redirect("webhooks:detail", endpoint.pk)
    return _detail(request, endpoint)


@require_POST
@console_view(CAP)
def endpoint_action(request: HttpRequest, endpoint_id: int, action: str) -> HttpResponse:
    if action not in ACTIONS:
        raise Http404
    endpoint = selectors.access_endpoint_for_user(request.user, endpoint_id)
    if action == "test":
        delivery = services.do_send_test(actor=request.user, endpoint=endpoint)
        if delivery.status == DeliveryStatus.SUCCEEDED:
            messages.success(request, _("Test delivered: HTTP %(code)s.") % {"code": delivery.last_status})
        else:
            messages.error(request, _("Test failed: %(error)s") % {"error": delivery.error})
        return redirect("webhooks:delivery", delivery.pk)
    if action == "rotate":
        secret = services.do_rotate_secret(actor=request.user, endpoint=endpoint)
        messages.success(request, _("New secret issued. Update the receiver now: later deliveries use it."))
        return _detail(request, endpoint, new_secret=secret)
    if action == "reveal":
        return _detail(
            request, endpoint, new_secret=services.do_reveal_secret(actor=request.user, endpoint=endpoint)
        )
    if action == "enable":
        services.do_enable_endpoint(actor=request.user, endpoint=endpoint)
        messages.success(request, _("Endpoint enabled; waiting deliveries go out now."))
    elif action == "disable":
        services.do_update_endpoint(actor=request.user, endpoint=endpoint, is_active=False)
        messages.success(request, _("Endpoint disabled."))
    elif action == "delete":
        services.do_delete_endpoint(actor=request.user, endpoint=endpoint)
        messages.success(request, _("Endpoint deleted."))
        return redirect("webhooks:list")
    return redirect("webhooks:detail", endpoint.pk)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


@console_view(CAP)
def delivery_list(request: HttpRequest) -> HttpResponse:
    endpoint_id = _int(request.GET.get("endpoint"))
    status = request.GET.get("status", "")
    status = status if status in DeliveryStatus.values else ""
    event = request.GET.get("event", "").strip()[:64]
    qs = selectors.list_deliveries(request.user, endpoint_id=endpoint_id, status=status, event=event)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    context = {
        "page": page, "endpoints": selectors.list_endpoints(request.user), "statuses": DeliveryStatus.choices,
        "endpoint_id": endpoint_id, "status": status, "event": event, "base_query": params.urlencode(),
    }  # fmt: skip
    template = "webhooks/partials/_deliveries.html" if request.htmx else "webhooks/deliveries.html"
    return render(request, template, context)


@console_view(CAP)
def delivery_detail(request: HttpRequest, delivery_id: int) -> HttpResponse:
    delivery = selectors.access_delivery_for_user(request.user, delivery_id)
    return render(
        request, "webhooks/delivery_detail.html", {"d": delivery, "attempts": delivery.attempt_log.all()}
    )


@require_POST
@console_view(CAP)
def delivery_replay(request: HttpRequest, delivery_id: int) -> HttpResponse:
    delivery = selectors.access_delivery_for_user(request.user, delivery_id)
    try:
        services.do_replay_delivery(actor=request.user, delivery=delivery)
        messages.success(request, _("Replay queued with the same delivery id."))
    except ValidationFailed as exc:
        flash_error(request, exc)
    return redirect("webhooks:delivery", delivery.pk)


@require_POST
@console_view(CAP)
def allow_add(request: HttpRequest) -> HttpResponse:
    try:
        entry = services.do_add_allowed_destination(
            actor=request.user, value=request.POST.get("value", ""), note=request.POST.get("note", "")
        )
        messages.success(request, _("%(value)s is now allowed.") % {"value": entry.value})
    except ValidationFailed as exc:
        flash_error(request, exc)
    return redirect("webhooks:list")


@require_POST
@console_view(CAP)
def allow_remove(request: HttpRequest, entry_id: int) -> HttpResponse:
    entry = selectors.list_allowed_destinations(request.user).filter(pk=entry_id).first()
    if entry is not None:
        services.do_remove_allowed_destination(actor=request.user, entry=entry)
        messages.success(request, _("%(value)s is no longer allowed.") % {"value": entry.value})
    return redirect("webhooks:list")
