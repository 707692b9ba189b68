"""Small builders for service tests: customers with orders, inboxes, conversations."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from ecrm.commerce.models import Order, OrderLine
from ecrm.conversations.models import Conversation, Inbox
from ecrm.core.models import Team
from ecrm.customers.models import Customer, Identity


def team(name: str) -> Team:
    return Team.objects.get(name=name)


def customer(name: str = "Wang Fang", email: str | None = "wang@example.com") -> Customer:
    c = Customer.objects.create(display_name=name, email=email, search_name=name.lower())
    if email:
        Identity.objects.create(customer=c, kind="email", value=email)
    return c


def order(cust: Customer, number: str = "SO-1", lines=((2, "99.00"),), status: str = "delivered") -> Order:
    total = sum(Decimal(price) * qty for qty, price in lines)
    o = Order.objects.create(
        external_id=number, customer=cust, status=status, total=total,
        placed_at=timezone.now() - dt.timedelta(days=5),
    )  # fmt: skip
    for i, (qty, price) in enumerate(lines, start=1):
        OrderLine.objects.create(
            order=o, line_no=i, sku=f"SKU-{i}", name=f"Item {i}", quantity=qty,
            unit_price=Decimal(price), line_total=Decimal(price) * qty,
        )  # fmt: skip
    return o


def conversation(cust: Customer, team_name: str | None = "Service CN", subject: str = "Help") -> Conversation:
    t = team(team_name) if team_name else None
    inbox, _ = Inbox.objects.get_or_create(name=f"mail {team_name}", kind="email", defaults={"team": t})
    return Conversation.objects.create(
        inbox=inbox, channel="email", customer=cust, team=t, subject=subject, contact=cust.email or "",
        last_message_at=timezone.now(),
    )  # fmt: skip
