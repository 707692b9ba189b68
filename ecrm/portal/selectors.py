"""Reads of the customer portal. Everything is scoped to the signed-in customer: another customer's
order, line, ticket or return is 'not found' (404), never 'forbidden', so ids cannot be probed."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest

from ecrm.commerce.models import Order, OrderLine
from ecrm.core.exceptions import NotFound
from ecrm.customers.models import Customer
from ecrm.service import selectors as service_selectors
from ecrm.service.models import ReturnRequest, Ticket

SESSION_KEY = "portal_customer_id"


def portal_customer(request: HttpRequest) -> Customer | None:
    """The customer signed in to the portal on this session (separate from console sign-in)."""
    customer_id = request.session.get(SESSION_KEY)
    if not customer_id:
        return None
    customer = Customer.objects.filter(pk=customer_id).first()
    hops = 0
    while customer is not None and customer.merged_into_id and hops < 10:
        customer = Customer.objects.filter(pk=customer.merged_into_id).first()
        hops += 1
    return customer


def orders_for_customer(customer: Customer) -> QuerySet[Order]:
    return Order.objects.filter(customer=customer).order_by("-placed_at", "-id")


def access_order_for_customer(customer: Customer, order_id: int) -> Order:
    order = (
        orders_for_customer(customer)
        .prefetch_related(
            Prefetch("lines", queryset=OrderLine.objects.order_by("line_no")),
            "status_history",
        )
        .filter(pk=order_id)
        .first()
    )
    if order is None:
        raise NotFound("No such order.")
    return order


def access_order_line_for_customer(customer: Customer, order_id: int, line_id: int) -> OrderLine:
    line = (
        OrderLine.objects.select_related("order")
        .filter(pk=line_id, order_id=order_id, order__customer=customer)
        .first()
    )
    if line is None:
        raise NotFound("No such order line.")
    return line


def returns_for_order(customer: Customer, order: Order) -> list[ReturnRequest]:
    return list(
        service_selectors.returns_for_customer(customer)
        .filter(return_record__order=order)
        .select_related("ticket")
        .order_by("-created_at", "-id")
    )


def tickets_for_customer(customer: Customer) -> QuerySet[Ticket]:
    return service_selectors.tickets_for_customer(customer)


def access_ticket_for_customer(customer: Customer, ticket_id: int) -> Ticket:
    return service_selectors.access_customer_ticket(customer, ticket_id)


def ticket_comments(ticket: Ticket):
    return service_selectors.public_comments(ticket)


def chat_widget(customer: Customer) -> dict | None:
    """What the page needs to embed the chat widget for this customer: the first active chat inbox
    and a signed customer token. None when no chat inbox is configured."""
    try:
        from ecrm.conversations.channels.chat.identity import sign_customer
        from ecrm.conversations.models import Inbox
    except ImportError:  # the chat channel is optional
        return None
    inbox = Inbox.objects.filter(kind="chat", is_active=True).order_by("pk").first()
    if inbox is None:
        return None
    return {"inbox_id": inbox.pk, "token": sign_customer(customer.pk)}
