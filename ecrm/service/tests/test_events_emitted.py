"""The service layer publishes domain events for what it did (routing, rules and webhooks listen)."""

from __future__ import annotations

import pytest

from ecrm.core import events


@pytest.fixture
def seen():
    got: list[events.Event] = []

    def handler(event: events.Event) -> None:
        got.append(event)

    events.subscribe(handler, names=("ticket.", "order."))
    yield got
    events.unsubscribe(handler)


def test_the_services_emit_what_they_did(db, seen, django_user_model, django_capture_on_commit_callbacks):
    """A ticket created and updated through the service layer, and an order upserted then moved."""
    import datetime as dt
    from decimal import Decimal

    from django.utils import timezone

    from ecrm.commerce.services import do_change_order_status, do_upsert_order
    from ecrm.core.models import Role
    from ecrm.customers.models import Customer
    from ecrm.service.services.tickets import do_create_ticket, do_update_ticket

    agent = django_user_model.objects.create_user("ev-agent", password="x", role=Role.MANAGER)
    customer = Customer.objects.create(display_name="Ev Customer")
    with django_capture_on_commit_callbacks(execute=True):
        ticket = do_create_ticket(actor=agent, customer=customer, subject="Broken kettle")
        do_update_ticket(ticket=ticket, actor=agent, changes={"priority": "high", "status": "pending"})
        result = do_upsert_order(external_id="EV-1", placed_at=timezone.now() - dt.timedelta(hours=1),
                                 total=Decimal("10.00"), currency="EUR", actor=None, customer=customer)  # fmt: skip
        do_change_order_status(order=result.order, status="shipped", actor=None)
    names = [e.name for e in seen]
    assert names == ["ticket.created", "ticket.updated", "ticket.status_changed", "order.placed",
                     "order.status_changed"]  # fmt: skip
    updated = seen[1]
    assert updated.data["changes"]["priority"] == ["normal", "high"]
    assert updated.actor_id == agent.pk
    assert seen[4].data["changes"]["status"] == ["paid", "shipped"]
