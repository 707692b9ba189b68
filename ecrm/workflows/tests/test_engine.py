"""The engine: every trigger family fires rules only after commit, rules run in order and can stop
the rest, a failing action is logged without stopping the others, and loop protection stops a rule
that retriggers itself (logged)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from ecrm.commerce.services import do_change_order_status, do_upsert_order
from ecrm.conversations.models import Inbox
from ecrm.conversations.services import Inbound, receive_inbound
from ecrm.core import events
from ecrm.core.models import AuditLog
from ecrm.customers.services import do_update_customer
from ecrm.service.models import Ticket
from ecrm.service.services import do_create_ticket, do_update_ticket
from ecrm.service.services.sla import check_sla
from ecrm.workflows import engine
from ecrm.workflows.models import Notification, Rule, RuleRun, Task

from .factories import customer, rule, team_with


@pytest.fixture
def ops(cast):
    return team_with("Ops", "manager")


def notify(message: str = "{{ event.name }}") -> list[dict]:
    return [{"type": "notify_team", "team": "Ops", "message": message}]


def messages() -> list[str]:
    return list(Notification.objects.order_by("id").values_list("message", flat=True))


def test_ticket_triggers_fire_after_commit_and_not_on_rollback(cast, ops, django_capture_on_commit_callbacks):
    rule("created", triggers=["ticket.created"], actions=notify("created {{ ticket.subject }}"))
    rule(
        "to pending",
        triggers=["ticket.status_changed"],
        conditions={"all": [{"field": "ticket.status", "op": "changed_to", "value": "pending"}]},
        actions=notify("pending {{ ticket.reference }}"),
    )
    with django_capture_on_commit_callbacks(execute=True):
        ticket = do_create_ticket(actor=cast["agent_li"], customer=customer(), subject="Lost parcel")
        assert messages() == []  # nothing before the commit
    with django_capture_on_commit_callbacks(execute=True):
        do_update_ticket(ticket=ticket, actor=cast["agent_li"], changes={"status": "open"})
        do_update_ticket(ticket=ticket, actor=cast["agent_li"], changes={"status": "pending"})
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            do_create_ticket(actor=cast["agent_li"], customer=customer("B", "b@example.com"), subject="Gone")
            raise RuntimeError
    assert callbacks == []
    assert messages() == ["created Lost parcel", f"pending {ticket.reference}"]


def test_message_order_sla_customer_and_score_triggers(cast, ops, django_capture_on_commit_callbacks):
    rule("message", triggers=["message.received"],
         conditions={"all": [{"field": "conversation.channel", "op": "eq", "value": "email"}]},
         actions=notify("mail from {{ customer.email }}"))  # fmt: skip
    rule("big order", triggers=["order.placed"],
         conditions={"all": [{"field": "order.total", "op": "gte", "value": 1000}]},
         actions=notify("big {{ order.number }}"))  # fmt: skip
    rule("refund", triggers=["order.status_changed"],
         conditions={"all": [{"field": "order.status", "op": "changed_to", "value": "refunded"}]},
         actions=notify("refunded {{ order.number }}"))  # fmt: skip
    rule("breach", triggers=["sla.breached"], actions=notify("breach {{ ticket.reference }}"))
    rule("moved city", triggers=["customer.updated"],
         conditions={"all": [{"field": "customer.city", "op": "changed_from", "value": "Beijing"}]},
         actions=notify("moved to {{ customer.city }}"))  # fmt: skip
    rule("churn", triggers=["customer.score_changed"],
         conditions={"all": [{"field": "event.changes.churn_band.new", "op": "eq", "value": "high"}]},
         actions=notify("churn risk {{ customer.name }}"))  # fmt: skip
    buyer = customer(city="Beijing")
    inbox = Inbox.objects.create(name="Mail", kind="email")
    with django_capture_on_commit_callbacks(execute=True):
        receive_inbound(
            Inbound(inbox=inbox, identities=[("email", "wang@example.com")], body_text="hi", subject="Hi")
        )
    with django_capture_on_commit_callbacks(execute=True):
        small = do_upsert_order(external_id="SO-1", placed_at=timezone.now(), total=Decimal("99"), currency="CNY",
                                actor=None, customer=buyer).order  # fmt: skip
        do_upsert_order(external_id="SO-2", placed_at=timezone.now(), total=Decimal("1200"), currency="CNY",
                        actor=None, customer=buyer)  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        do_change_order_status(order=small, status="refunded", actor=None)
    with django_capture_on_commit_callbacks(execute=True):
        ticket = do_create_ticket(actor=cast["agent_li"], customer=buyer, subject="Late")
    Ticket.objects.filter(pk=ticket.pk).update(first_response_due=timezone.now() - dt.timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        check_sla()
    with django_capture_on_commit_callbacks(execute=True):
        do_update_customer(customer=buyer, changes={"city": "Shanghai"}, actor=None)
        events.emit("customer.score_changed", subject_type="customer", subject_id=buyer.pk,
                    data={"changes": {"churn_band": ["low", "high"]}})  # fmt: skip
    assert messages() == [
        "mail from wang@example.com", "big SO-2", "refunded SO-1", f"breach {ticket.reference}",
        "moved to Shanghai", "churn risk Wang Fang",
    ]  # fmt: skip


def test_rules_run_in_order_and_stop_processing_stops_the_rest(cast, ops, django_capture_on_commit_callbacks):
    second = rule("second", actions=notify("second"))
    first = rule("first", actions=notify("first"), stop_processing=True)
    third = rule("third", actions=notify("third"))
    from ecrm.workflows.services import do_reorder_rules, do_set_rule_active

    do_reorder_rules(actor=cast["admin"], rule_ids=[first.pk, second.pk, third.pk])
    with django_capture_on_commit_callbacks(execute=True):
        do_create_ticket(actor=cast["agent_li"], customer=customer(), subject="a")
    assert messages() == ["first"]
    do_set_rule_active(actor=cast["admin"], rule=first, active=False)
    with django_capture_on_commit_callbacks(execute=True):
        do_create_ticket(actor=cast["agent_li"], customer=customer("C", "c@example.com"), subject="b")
    assert messages() == ["first", "second", "third"]


def test_a_failing_action_is_logged_and_the_others_still_run(cast, ops, django_capture_on_commit_callbacks):
    rule(
        "half broken",
        actions=[
            {"type": "change_status", "target": "order", "status": "paid"},  # the ticket has no order
            {"type": "create_task", "title": "Call {{ customer.name }}", "team": "Ops", "due_in": "2h"},
        ],
    )
    rule("after it", actions=notify("still here"))
    with django_capture_on_commit_callbacks(execute=True):
        ticket = do_create_ticket(actor=cast["agent_li"], customer=customer(), subject="a")
    run = RuleRun.objects.get(rule_name="half broken")
    assert run.status == "failed" and run.error == "an action failed"
    assert run.actions == [
        {"type": "change_status", "ok": False, "result": "there is no order"},
        {"type": "create_task", "ok": True, "result": f"task {Task.objects.get().pk}: Call Wang Fang"},
    ]
    task = Task.objects.get()
    assert (task.team.name, task.subject_type, task.subject_id) == ("Ops", "ticket", ticket.pk)
    assert dt.timedelta(minutes=119) < task.due_at - timezone.now() <= dt.timedelta(hours=2)
    assert messages() == ["still here"]


def test_a_rule_that_retriggers_itself_is_stopped_and_logged(cast, ops, django_capture_on_commit_callbacks):
    # two rules flip the priority back and forth: each change is a new ticket.updated one step deeper
    rule("down", triggers=["ticket.updated"],
         conditions={"all": [{"field": "ticket.priority", "op": "eq", "value": "high"}]},
         actions=[{"type": "set_field", "field": "ticket.priority", "value": "low"}])  # fmt: skip
    rule("up", triggers=["ticket.updated"],
         conditions={"all": [{"field": "ticket.priority", "op": "eq", "value": "low"}]},
         actions=[{"type": "set_field", "field": "ticket.priority", "value": "high"}])  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        ticket = do_create_ticket(actor=cast["agent_li"], customer=customer(), subject="a")
    with django_capture_on_commit_callbacks(execute=True):
        do_update_ticket(ticket=ticket, actor=cast["agent_li"], changes={"priority": "high"})
    runs = list(RuleRun.objects.order_by("id").values_list("rule_name", "chain", "status", "error"))
    # "up" sees what "down" did (later rules see earlier rules' changes); each change is a
    # ticket.updated one step deeper, where "down" matches again and is refused
    refused = ("down", 1, "refused", "loop protection: this rule already ran on this record in this chain")
    assert runs == [("down", 0, "done", ""), ("up", 0, "done", ""), refused, refused]
    ticket.refresh_from_db()
    assert ticket.priority == "high"
    # the changes went through the ticket service: audited as the system
    updates = AuditLog.objects.filter(action="ticket.update", object_id=str(ticket.pk)).order_by("id")
    assert [(a.actor_label, a.after.get("priority")) for a in updates] == [
        ("agent_li", "high"), ("system", "low"), ("system", "high"),
    ]  # fmt: skip


def test_the_chain_depth_limit_refuses_and_logs(cast, ops):
    r = rule("deep", triggers=["ticket.updated"], actions=notify("deep"))
    ticket = do_create_ticket(actor=cast["agent_li"], customer=customer(), subject="a")
    for chain in (engine.MAX_CHAIN - 1, engine.MAX_CHAIN):
        event = events.Event(name="ticket.updated", subject_type="ticket", subject_id=ticket.pk, chain=chain)
        engine.process_event(event)
    runs = list(RuleRun.objects.order_by("id").values_list("chain", "status", "error"))
    assert runs == [
        (engine.MAX_CHAIN - 1, "done", ""),
        (engine.MAX_CHAIN, "refused", f"loop protection: {engine.MAX_CHAIN} automated steps deep (limit 5)"),
    ]
    assert messages() == ["deep"]
    engine.flush_counters()
    r.refresh_from_db()
    assert (r.evaluated_count, r.matched_count) == (2, 2)


def test_non_matches_are_counted_not_logged(cast, ops, django_capture_on_commit_callbacks):
    r = rule("urgent only", conditions={"all": [{"field": "ticket.priority", "op": "eq", "value": "urgent"}]},
             actions=notify())  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        for i in range(3):
            do_create_ticket(
                actor=cast["agent_li"], customer=customer(f"c{i}", f"c{i}@example.com"), subject="x"
            )
    engine.flush_counters()
    r.refresh_from_db()
    assert (r.evaluated_count, r.matched_count, RuleRun.objects.count()) == (3, 0, 0)


def test_a_rule_saved_elsewhere_is_seen_by_the_worker(cast, ops):
    """The worker checks the rules table's version on each event, so a rule changed by another
    process (here: straight in the table) applies to the next event."""
    ticket = do_create_ticket(actor=cast["agent_li"], customer=customer(), subject="a")
    r = rule("x", actions=notify("x"))
    engine.rules_for("ticket.created")
    Rule.objects.filter(pk=r.pk).update(is_active=False, updated_at=timezone.now())
    event = events.Event(name="ticket.created", subject_type="ticket", subject_id=ticket.pk)
    assert engine.process_event(event) == []
