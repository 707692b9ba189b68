"""Each action makes its change through the owning app's service (audited as the system), and the
scheduler runs time-based rules once per record change."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from ecrm.commerce.services import do_upsert_order
from ecrm.conversations.models import Conversation, Inbox
from ecrm.core.models import AuditLog
from ecrm.customers.services import do_set_consent
from ecrm.service.models import Ticket
from ecrm.service.services import do_create_ticket, do_update_ticket
from ecrm.workflows.models import Notification, RuleRun, Task
from ecrm.workflows.services import run_due_scheduled_rules

from .factories import customer, rule, team_with


@pytest.fixture
def ops(cast):
    return team_with("Ops", "manager", "agent_li")


def audit(action: str, object_id) -> list[tuple[str, dict]]:
    return [
        (a.actor_label, a.after)
        for a in AuditLog.objects.filter(action=action, object_id=str(object_id)).order_by("id")
    ]


def test_assign_set_field_tag_and_status_on_a_ticket(cast, ops, django_capture_on_commit_callbacks):
    rule("work it", actions=[
        {"type": "assign", "team": "Ops", "user": "agent_li"},
        {"type": "set_field", "field": "ticket.priority", "value": "high"},
        {"type": "add_tag", "target": "ticket", "tag": "Auto"},
        {"type": "add_tag", "target": "customer", "tag": "has-ticket"},
        {"type": "set_field", "field": "customer.lifecycle_stage", "value": "customer"},
        {"type": "change_status", "target": "ticket", "status": "pending"},
    ])  # fmt: skip
    buyer = customer()
    with django_capture_on_commit_callbacks(execute=True):
        ticket = do_create_ticket(actor=cast["agent_bob"], customer=buyer, subject="x")
    ticket.refresh_from_db()
    buyer.refresh_from_db()
    assert (ticket.team.name, ticket.assignee.username, ticket.priority, ticket.status) == (
        "Ops", "agent_li", "high", "pending",
    )  # fmt: skip
    assert list(ticket.tags.values_list("name", flat=True)) == ["auto"]
    assert list(buyer.tags.values_list("name", flat=True)) == ["has-ticket"]
    assert buyer.lifecycle_stage == "customer"
    updates = audit("ticket.update", ticket.pk)
    assert [label for label, _ in updates] == ["system"] * 4
    assert updates[0][1]["assignee_id"] == cast["agent_li"].pk and updates[1][1]["priority"] == "high"
    assert audit("customer.tag_add", buyer.pk) == [("system", {"tag": "has-ticket"})]
    assert audit("customer.update", buyer.pk)[0][1]["lifecycle_stage"] == "customer"
    run = RuleRun.objects.get(chain=0)
    assert [a["ok"] for a in run.actions] == [True] * 6


def test_assign_a_conversation_and_route_it(cast, ops, django_capture_on_commit_callbacks):
    from ecrm.routing.models import WorkItem

    rule(
        "conv",
        triggers=["conversation.created"],
        actions=[{"type": "assign", "team": "Ops"}, {"type": "route"}],
    )
    buyer = customer()
    inbox = Inbox.objects.create(name="Chat", kind="email")
    from ecrm.conversations.services import Inbound, receive_inbound

    with django_capture_on_commit_callbacks(execute=True):
        conv = receive_inbound(
            Inbound(inbox=inbox, identities=[("email", buyer.email)], body_text="hi")
        ).conversation
    conv = Conversation.objects.get(pk=conv.pk)
    assert conv.team.name == "Ops"
    assert audit("conversation.assign", conv.pk)[-1][0] == "system"
    # routing may have queued it already (it listens too): enqueueing is idempotent, one open item
    item = WorkItem.objects.get(kind="conversation", object_id=conv.pk)
    assert RuleRun.objects.get(rule_name="conv").actions[1]["result"] == f"queued as work item {item.pk}"


def test_a_rule_pends_a_conversation_as_the_system(cast, django_capture_on_commit_callbacks):
    rule("wait for customer", triggers=["message.sent"],
         actions=[{"type": "change_status", "target": "conversation", "status": "pending"}])  # fmt: skip
    buyer = customer()
    inbox = Inbox.objects.create(name="Mail", kind="email")
    from ecrm.conversations.services import Inbound, do_send_reply, receive_inbound

    conv = receive_inbound(
        Inbound(inbox=inbox, identities=[("email", buyer.email)], body_text="hi")
    ).conversation
    with django_capture_on_commit_callbacks(execute=True):
        do_send_reply(conversation=conv, actor=cast["manager"], body_text="We are on it")
    conv.refresh_from_db()
    assert conv.status == "pending"
    assert audit("conversation.status", conv.pk) == [("system", {"status": "pending"})]


def test_order_status_email_with_consent_task_and_webhook(cast, ops, django_capture_on_commit_callbacks):
    from ecrm.webhooks.models import Delivery, Endpoint

    Endpoint.objects.create(name="ERP", url="https://erp.example.com/hook", events=[])
    rule("paid order", triggers=["order.placed"], actions=[
        {"type": "change_status", "target": "order", "status": "shipped"},
        {"type": "send_email", "to": "customer", "kind": "service", "subject": "Order {{ order.number }}",
         "body": "Dear {{ customer.name }}, order {{ order.number }} ({{ order.total }} {{ order.currency }})."},
        {"type": "send_email", "to": "customer", "kind": "marketing", "subject": "Offer", "body": "Buy more"},
        {"type": "create_task", "title": "Pack {{ order.number }}", "team": "Ops", "due_in": "1d"},
        {"type": "webhook", "endpoint": "ERP"},
    ])  # fmt: skip
    buyer = customer(name="Wang <b>Fang</b>")
    with django_capture_on_commit_callbacks(execute=True):
        order = do_upsert_order(external_id="SO-9", placed_at=timezone.now(), total=Decimal("88.50"), currency="CNY",
                                actor=None, customer=buyer).order  # fmt: skip
    order.refresh_from_db()
    assert order.status == "shipped"
    assert audit("order.status", order.pk) == [("system", {"status": "shipped"})]
    assert [(m.to, m.subject, m.body) for m in mail.outbox] == [
        (["wang@example.com"], "Order SO-9", "Dear Wang <b>Fang</b>, order SO-9 (88.50 CNY)."),
    ]
    results = [a["result"] for a in RuleRun.objects.get(rule_name="paid order").actions]
    assert results[2] == "not sent: no marketing consent for email"
    task = Task.objects.get()
    assert (task.title, task.team.name, task.subject_type, task.subject_id) == (
        "Pack SO-9",
        "Ops",
        "order",
        order.pk,
    )
    delivery = Delivery.objects.get()
    assert delivery.event_name == "order.placed" and delivery.payload["rule"] == "paid order"
    assert delivery.payload["order"] == {
        "number": "SO-9",
        "status": "shipped",
        "total": "88.50",
        "currency": "CNY",
    }
    # with consent the marketing mail goes; a refused service consent stops service mail
    do_set_consent(
        customer=buyer, purpose="marketing", channel="email", granted=True, source="test", actor=None
    )
    do_set_consent(
        customer=buyer, purpose="service", channel="email", granted=False, source="test", actor=None
    )
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        do_upsert_order(external_id="SO-10", placed_at=timezone.now(), total=Decimal("1"), currency="CNY",
                        actor=None, customer=buyer)  # fmt: skip
    assert [m.subject for m in mail.outbox] == ["Offer"]


def test_a_scheduled_rule_acts_once_per_record_change(cast, ops, django_capture_on_commit_callbacks):
    rule(
        "pending 3 days",
        triggers=["schedule"], schedule_subject="ticket", schedule_every=60,
        conditions={"all": [{"field": "ticket.status", "op": "eq", "value": "pending"},
                            {"field": "ticket.updated_at", "op": "older_than", "value": "3d"}]},
        actions=[{"type": "notify_team", "team": "Ops", "message": "{{ ticket.reference }} waits"}],
    )  # fmt: skip
    buyer = customer()
    old = do_create_ticket(actor=cast["agent_li"], customer=buyer, subject="old")
    fresh = do_create_ticket(actor=cast["agent_li"], customer=buyer, subject="fresh")
    for t in (old, fresh):
        do_update_ticket(ticket=t, actor=cast["agent_li"], changes={"status": "pending"})
    Ticket.objects.filter(pk=old.pk).update(updated_at=timezone.now() - dt.timedelta(days=4))
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        assert list(run_due_scheduled_rules(now).values()) == [1]
        assert run_due_scheduled_rules(now + dt.timedelta(minutes=10)) == {}  # not due yet
        assert list(run_due_scheduled_rules(now + dt.timedelta(minutes=61)).values()) == [
            0
        ]  # unchanged: once
    assert sorted(Notification.objects.values_list("message", flat=True)) == [f"{old.reference} waits"] * 2
    assert RuleRun.objects.get().event_name == "schedule.tick"
