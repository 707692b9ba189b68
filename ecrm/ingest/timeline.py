"""Behavioural events on the customer timeline (registered in IngestConfig.ready)."""

from __future__ import annotations

import datetime as dt

from django.utils.translation import gettext as _

from ecrm.customers.timeline import TimelineEntry

from .models import Event

_TITLES = {
    "page_view": _("Viewed a page"),
    "product_view": _("Viewed a product"),
    "add_to_cart": _("Added to cart"),
    "checkout": _("Checked out"),
    "identify": _("Identified"),
}


def _describe(event: Event) -> str:
    props = event.properties or {}
    parts = [event.name] if event.name else []
    for key in ("product_name", "title", "url", "path", "sku", "price"):
        value = props.get(key)
        if value not in (None, "") and str(value) not in parts:
            parts.append(str(value))
    return " · ".join(parts[:4])


def events_source(customer, before: dt.datetime | None, limit: int) -> list[TimelineEntry]:
    qs = Event.objects.filter(customer=customer)
    if before is not None:
        qs = qs.filter(occurred_at__lte=before)
    rows = qs.order_by("-occurred_at", "-id").only("id", "type", "name", "properties", "occurred_at", "source")[:limit]
    return [
        TimelineEntry(
            at=e.occurred_at,
            kind="event",
            key=f"event:{e.pk:012d}",
            title=str(_TITLES.get(e.type, e.type.replace("_", " ").capitalize())),
            body=_describe(e),
            meta={"type": e.type, "source": e.source},
        )
        for e in rows
    ]
