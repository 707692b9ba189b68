"""Orders on the customer timeline (registered in CommerceConfig.ready)."""

from __future__ import annotations

import datetime as dt

from django.urls import reverse
from django.utils.translation import gettext as _

from ecrm.customers.timeline import TimelineEntry

from .models import Order


def orders_source(customer, before: dt.datetime | None, limit: int) -> list[TimelineEntry]:
    qs = Order.objects.filter(customer=customer)
    if before is not None:
        qs = qs.filter(placed_at__lte=before)
    return [
        TimelineEntry(
            at=o.placed_at,
            kind="order",
            key=f"order:{o.pk:012d}",
            title=_("Order %(number)s · %(total)s %(currency)s")
            % {"number": o.external_id, "total": o.total, "currency": o.currency},
            body=" · ".join(p for p in (o.get_status_display(), o.channel, o.shipping_city) if p),
            url=reverse("commerce:order_detail", args=[o.pk]),
        )
        for o in qs.order_by("-placed_at", "-id")[:limit]
    ]
