"""Domain events become deliveries only for endpoints subscribed to them, and only after commit."""

from __future__ import annotations

import orjson
import pytest
from django.db import transaction

from ecrm.core import events
from ecrm.core.models import Role
from ecrm.customers.models import Customer
from ecrm.service.services.tickets import do_create_ticket, do_update_ticket
from ecrm.webhooks import services
from ecrm.webhooks.models import Delivery


@pytest.fixture
def manager(django_user_model):
    return django_user_model.objects.create_user("wh-manager", password="x", role=Role.MANAGER)


def test_a_ticket_event_reaches_the_endpoints_subscribed_to_it_with_a_snapshot(
    endpoint, receiver, manager, django_capture_on_commit_callbacks
):
    tickets = endpoint(events=["ticket."], path="/tickets", name="Helpdesk mirror")
    created_only = endpoint(events=["ticket.created"], path="/created", name="Created only")
    endpoint(events=["order."], path="/orders", name="ERP orders")
    customer = Customer.objects.create(display_name="Wang Fang")
    with django_capture_on_commit_callbacks(execute=True):
        ticket = do_create_ticket(actor=manager, customer=customer, subject="Broken kettle", tags=["vip"])
        assert Delivery.objects.count() == 0  # nothing before the commit
    with django_capture_on_commit_callbacks(execute=True):
        do_update_ticket(ticket=ticket, actor=manager, changes={"priority": "high"})
    got = sorted((r.path, r.headers["X-Ecrm-Event"]) for r in receiver.requests)
    assert got == [
        ("/created", "ticket.created"),
        ("/tickets", "ticket.created"),
        ("/tickets", "ticket.updated"),
    ]
    assert Delivery.objects.filter(endpoint=created_only).count() == 1
    assert Delivery.objects.filter(endpoint=tickets).count() == 2
    body = orjson.loads(next(r.body for r in receiver.requests if r.path == "/created"))
    assert (body["name"], body["subject_type"], body["subject_id"], body["actor_id"]) == (
        "ticket.created", "ticket", ticket.pk, manager.pk,
    )  # fmt: skip
    assert body["subject"]["subject"] == "Broken kettle" and body["subject"]["customer_id"] == customer.pk
    assert body["subject"]["tags"] == ["vip"]


def test_a_rolled_back_write_sends_nothing(endpoint, receiver, manager, django_capture_on_commit_callbacks):
    endpoint(events=["*"])
    customer = Customer.objects.create(display_name="Li Lei")
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            do_create_ticket(actor=manager, customer=customer, subject="never")
            raise RuntimeError("rollback")
    assert Delivery.objects.count() == 0 and receiver.requests == []


def test_disabled_and_deleted_endpoints_get_nothing(
    endpoint, receiver, cast, django_capture_on_commit_callbacks
):
    off = endpoint(events=["ticket."], name="Off")
    services.do_update_endpoint(actor=cast["admin"], endpoint=off, is_active=False)
    gone = endpoint(events=["ticket."], name="Gone")
    services.do_delete_endpoint(actor=cast["admin"], endpoint=gone)
    with django_capture_on_commit_callbacks(execute=True):
        events.emit("ticket.created", subject_type="ticket", subject_id=None, data={})
    assert Delivery.objects.count() == 0 and receiver.requests == []


def test_no_subscription_costs_no_query(endpoint, django_assert_num_queries):
    endpoint(events=["order.placed"])
    services.on_event(
        events.Event(name="order.placed", subject_type="order", subject_id=None)
    )  # warm the cache
    with django_assert_num_queries(0):
        services.on_event(events.Event(name="ticket.created", subject_type="ticket", subject_id=1))
