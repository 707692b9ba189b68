"""Order figures on the home page: orders and revenue over the last 30 days, per currency."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Sum
from django.urls import reverse_lazy
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ecrm.core.home import cached_figure
from ecrm.core.selectors import register_home_figure

from .models import Order, OrderStatus

NOT_REVENUE = [OrderStatus.CANCELLED, OrderStatus.REFUNDED, OrderStatus.PENDING]


def _last_30_days():
    since = timezone.now() - dt.timedelta(days=30)
    return Order.objects.filter(placed_at__gte=since).exclude(status__in=NOT_REVENUE)


def _orders_30d() -> str:
    return f"{_last_30_days().count():,}"


def _revenue_30d() -> str:
    rows = _last_30_days().values("currency").annotate(total=Sum("total"), n=Count("id")).order_by("-n")
    return " · ".join(f"{row['total']:,.2f} {row['currency']}" for row in rows) or "0"


def register() -> None:
    register_home_figure(
        cached_figure(
            "orders_30d", "commerce.view", _("Orders (30 days)"), reverse_lazy("commerce:orders"), _orders_30d
        )
    )
    register_home_figure(
        cached_figure(
            "revenue_30d",
            "commerce.view",
            _("Revenue (30 days)"),
            reverse_lazy("commerce:orders"),
            _revenue_30d,
        )
    )
