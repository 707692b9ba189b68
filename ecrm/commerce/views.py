"""Console pages for orders: the list (keyset pages, search by order number) and the order detail."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from ecrm.core.web import console_view

from . import selectors
from .models import OrderStatus


def _int(value) -> int | None:
    try:
        return int(value) or None
    except (TypeError, ValueError):
        return None


@console_view("commerce.view")
def orders(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "").strip()[:64]
    status = request.GET.get("status", "")
    after, customer_id = _int(request.GET.get("after")), _int(request.GET.get("customer"))
    rows, next_after = selectors.order_list_for_user(
        request.user, q=q, status=status, customer_id=customer_id, after=after
    )
    params = request.GET.copy()
    params.pop("after", None)
    context = {
        "orders": rows,
        "next_after": next_after,
        "q": q,
        "status": status,
        "statuses": OrderStatus.choices,
        "base_query": params.urlencode(),
        "is_first_page": after is None,
    }
    template = "commerce/partials/_orders.html" if request.htmx else "commerce/orders.html"
    return render(request, template, context)


@console_view("commerce.view")
def order_detail(request: HttpRequest, order_id: int) -> HttpResponse:
    order = selectors.access_order_for_user(request.user, order_id)
    return render(request, "commerce/order_detail.html", {"order": order, **selectors.order_detail(order)})
