"""Test data for customers and what hangs off them (orders, events), built with the real services
where one exists and with the models where the owning service belongs to another app."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

from django.apps import apps
from django.utils import timezone

from ecrm.customers.models import Customer
from ecrm.customers.services import do_add_note, do_set_consent, do_upsert_customer

# customers sits below commerce and ingest (import-linter layers), so its tests reach their models
# through the app registry instead of importing them.
Order = apps.get_model("commerce", "Order")
OrderLine = apps.get_model("commerce", "OrderLine")
OrderStatusChange = apps.get_model("commerce", "OrderStatusChange")
Event = apps.get_model("ingest", "Event")

_seq = itertools.count(1)


def make_customer(*, first_name="", last_name="", email=None, phone=None, tags=(), actor=None, **traits) -> Customer:
    identities = []
    if not email and not phone:
        identities.append(("external", f"shop-{next(_seq)}"))
    resolution = do_upsert_customer(
        identities=identities,
        traits={"first_name": first_name, "last_name": last_name, "email": email, "phone": phone, **traits},
        tags=list(tags),
        actor=actor,
        source="test",
    )
    return Customer.objects.get(pk=resolution.customer.pk)


def make_order(customer, *, number=None, total="100.00", currency="CNY", status="paid", days_ago=1, lines=1):
    placed = timezone.now() - dt.timedelta(days=days_ago)
    order = Order.objects.create(
        external_id=number or f"SO-{next(_seq):06d}",
        customer=customer,
        status=status,
        channel="web",
        placed_at=placed,
        total=Decimal(total),
        subtotal=Decimal(total),
        currency=currency,
        shipping_city="Shanghai",
    )
    for n in range(1, lines + 1):
        OrderLine.objects.create(
            order=order, line_no=n, sku=f"SKU-{n}", name=f"Item {n}", quantity=1, unit_price=Decimal(total) / lines,
            line_total=Decimal(total) / lines,
        )
    OrderStatusChange.objects.create(order=order, from_status="", to_status=status, changed_at=placed)
    return order


def make_event(customer, *, type="page_view", name="", days_ago=0.5, properties=None):
    return Event.objects.create(
        event_id=f"evt-{next(_seq)}",
        customer=customer,
        type=type,
        name=name,
        properties=properties or {},
        occurred_at=timezone.now() - dt.timedelta(days=days_ago),
    )


def make_note(customer, body, actor=None):
    return do_add_note(customer=customer, body=body, actor=actor)


def make_consent(customer, purpose, channel, granted, source="checkout"):
    return do_set_consent(customer=customer, purpose=purpose, channel=channel, granted=granted, source=source, actor=None)
