"""Reads on orders, each applying the permission rules, plus what commerce contributes to the
customer pages (key figures, recent orders, order-number search, the has-orders filter)."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.db.models import Count, Exists, Max, Min, OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from ecrm.core.exceptions import NotFound
from ecrm.core.permissions import check_perm, has_perm

from .models import Order, OrderStatus

# The statuses whose money the shop keeps (see Order.counts_as_revenue).
REVENUE_STATUSES = [s for s in OrderStatus.values if s not in (OrderStatus.CANCELLED, OrderStatus.REFUNDED, OrderStatus.PENDING)]
PREFIX_END = "\uffff"


def order_list_for_user(
    user: Any, *, q: str = "", status: str = "", customer_id: int | None = None, after: int | None = None,
    limit: int | None = None,
):
    """One keyset page (id desc) of orders; `q` is an order number (exact, or prefix by index range)."""
    check_perm(user, "commerce.view")
    limit = max(1, min(limit or settings.ECRM_PAGE_SIZE, 200))
    qs: QuerySet[Order] = Order.objects.select_related("customer").order_by("-id")
    q = q.strip()
    if q:
        qs = qs.filter(external_id__gte=q, external_id__lt=q + PREFIX_END)
    if status and status in OrderStatus.values:
        qs = qs.filter(status=status)
    if customer_id:
        qs = qs.filter(customer_id=customer_id)
    if after:
        qs = qs.filter(pk__lt=after)
    rows = list(qs[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].pk if more and rows else None)


def access_order_for_user(user: Any, order_id: int) -> Order:
    check_perm(user, "commerce.view")
    order = Order.objects.select_related("customer").filter(pk=order_id).first()
    if order is None:
        raise NotFound("No such order.")
    return order


def order_detail(order: Order) -> dict[str, Any]:
    return {
        "lines": list(order.lines.all()),
        "history": list(order.status_history.all()),
        "returns": list(order.returns.select_related("order_line")),
    }


def customer_order_figures(customer_id: int, *, today: dt.date | None = None) -> list[dict[str, Any]]:
    """Key figures per currency in ONE aggregate query over the customer's orders: orders, revenue
    (orders that count as revenue), average order value, first and last order, days since last."""
    revenue = Q(status__in=REVENUE_STATUSES)
    rows = (
        Order.objects.filter(customer_id=customer_id)
        .values("currency")
        .annotate(
            orders=Count("id"),
            revenue_orders=Count("id", filter=revenue),
            revenue=Sum("total", filter=revenue),
            first_order=Min("placed_at"),
            last_order=Max("placed_at"),
        )
        .order_by("-orders", "currency")
    )
    today = today or timezone.localdate()
    out = []
    for row in rows:
        total = (row["revenue"] or Decimal("0")).quantize(Decimal("0.01"), ROUND_HALF_UP)
        aov = (total / row["revenue_orders"]).quantize(Decimal("0.01"), ROUND_HALF_UP) if row["revenue_orders"] else None
        out.append(
            {
                **row,
                "revenue": total,
                "average_order_value": aov,
                "days_since_last_order": (today - timezone.localtime(row["last_order"]).date()).days,
            }
        )
    return out


def recent_orders(customer_id: int, limit: int = 5) -> list[Order]:
    return list(Order.objects.filter(customer_id=customer_id).order_by("-placed_at", "-id")[:limit])


def customer_orders_panel(customer, user) -> dict | None:
    """The 360 page's key figures and recent orders."""
    if not has_perm(user, "commerce.view"):
        return None
    figures = customer_order_figures(customer.pk)
    return {
        "template": "commerce/partials/_customer_figures.html",
        "position": "top",
        "figures": figures,
        "orders_total": sum(f["orders"] for f in figures),
        "recent_orders": recent_orders(customer.pk),
    }


def customers_with_order_number(q: str) -> list[int]:
    """Search resolver: an exact order number leads to its customer."""
    q = q.strip()
    if not q or len(q) > 64:
        return []
    return [pk for pk in Order.objects.filter(external_id=q).values_list("customer_id", flat=True) if pk]


def filter_has_orders(qs, has: bool):
    # EXISTS over the (customer, placed_at) index: one probe per candidate row, stops at the first.
    exists = Exists(Order.objects.filter(customer_id=OuterRef("pk")))
    return qs.filter(exists) if has else qs.filter(~exists)


def order_counts(customer_ids: list[int]) -> dict[int, int]:
    return dict(
        Order.objects.filter(customer_id__in=customer_ids).values("customer_id").annotate(n=Count("id")).values_list("customer_id", "n")
    )
