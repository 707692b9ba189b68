"""Reads of webhooks: endpoints, the delivery log, and the cached subscription and allow-list tables."""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.db.models import QuerySet

from ecrm.core.exceptions import NotFound
from ecrm.core.permissions import check_perm

from .models import AllowedDestination, Delivery, Endpoint

SUBS_VERSION_KEY = "webhooks:subscriptions:v"
ALLOW_VERSION_KEY = "webhooks:allowlist:v"

# Per-process copies, refreshed when the version in the (shared) cache moves: the event handler runs on
# every domain event, so "nobody subscribes to this" must cost a cache get, not a query.
_subs: dict[str, Any] = {"version": None, "rows": []}
_allow: dict[str, Any] = {"version": None, "rows": []}


def active_subscriptions() -> list[tuple[int, list[str]]]:
    version = cache.get(SUBS_VERSION_KEY, 0)
    if _subs["version"] != version:
        rows = list(Endpoint.objects.filter(is_active=True).values_list("pk", "events"))
        _subs.update(version=version, rows=[(pk, list(ev or [])) for pk, ev in rows])
    return _subs["rows"]


def allowlist_values() -> list[str]:
    """The admin-managed allow-list (core/http.py adds it to ECRM_OUTBOUND_ALLOWLIST)."""
    version = cache.get(ALLOW_VERSION_KEY, 0)
    if _allow["version"] != version:
        try:
            rows = list(AllowedDestination.objects.values_list("value", flat=True))
        except Exception:  # no table yet (migrations not run): the env list alone applies
            return []
        _allow.update(version=version, rows=rows)
    return _allow["rows"]


def bump(key: str) -> None:
    try:
        cache.incr(key)
    except ValueError:
        cache.set(key, 1, timeout=None)


def list_endpoints(user) -> QuerySet[Endpoint]:
    check_perm(user, "webhooks.manage")
    return Endpoint.objects.select_related("created_by").order_by("name", "id")


def access_endpoint_for_user(user, endpoint_id: int) -> Endpoint:
    check_perm(user, "webhooks.manage")
    endpoint = Endpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None:
        raise NotFound("No such webhook endpoint.")
    return endpoint


def list_deliveries(
    user, *, endpoint_id: int | None = None, status: str = "", event: str = ""
) -> QuerySet[Delivery]:
    check_perm(user, "webhooks.manage")
    qs = Delivery.objects.select_related("endpoint")
    if endpoint_id:
        qs = qs.filter(endpoint_id=endpoint_id)
    if status:
        qs = qs.filter(status=status)
    if event:
        qs = qs.filter(event_name__startswith=event) if event.endswith(".") else qs.filter(event_name=event)
    return qs.order_by("-created_at", "-id")


def access_delivery_for_user(user, delivery_id: int) -> Delivery:
    check_perm(user, "webhooks.manage")
    delivery = Delivery.objects.select_related("endpoint").filter(pk=delivery_id).first()
    if delivery is None:
        raise NotFound("No such delivery.")
    return delivery


def list_allowed_destinations(user) -> QuerySet[AllowedDestination]:
    check_perm(user, "webhooks.manage")
    return AllowedDestination.objects.select_related("created_by").order_by("value")
