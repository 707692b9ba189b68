"""A complaint through its flow across three departments, with a workflow rule notifying the team
that receives it at each handoff (service desk flows + workflows rules, end to end).

Lives in tests/ (not ecrm/service/tests/) because it uses the workflows app, which sits above the
service app in the import layers."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from ecrm.core.exceptions import ValidationFailed
from ecrm.core.models import User
from ecrm.customers.models import Customer
from ecrm.service.demo import seed_ticket_flows
from ecrm.service.flows.models import TicketFlowStep
from ecrm.service.flows.services import do_transition
from ecrm.service.models import BusinessCalendar, Ticket
from ecrm.service.services import do_create_ticket
from ecrm.workflows import engine
from ecrm.workflows.models import Notification, RuleRun
from ecrm.workflows.services import do_create_rule

ALWAYS_OPEN = {str(d): [["00:00", "24:00"]] for d in range(7)}
TEAMS = ("Service CN", "Warehouse", "Finance")


@pytest.fixture
def desk(cast):
    engine.invalidate()
    engine._recent.clear()
    engine._counts.clear()
    BusinessCalendar.objects.create(name="24/7", timezone="UTC", weekly_hours=ALWAYS_OPEN, is_default=True)
    seed_ticket_flows()
    admin = cast["admin"]
    for team in TEAMS:
        do_create_rule(
            actor=admin,
            data={
                "name": f"Complaint handed to {team}",
                "triggers": ["ticket.stage_changed"],
                "conditions": {"all": [
                    {"field": "event.data.team_name", "op": "eq", "value": team},
                    {"field": "ticket.type", "op": "eq", "value": "complaint"},
                ]},
                "actions": [{"type": "notify_team", "team": team,
                             "message": "{{ ticket.reference }} “{{ ticket.subject }}” is now with {{ ticket.team }}"}],
            },
        )  # fmt: skip
    yield {u.username: u for u in User.objects.all()}
    engine.invalidate()
    engine._recent.clear()
    engine._counts.clear()


def new_notices(seen: set[int]) -> list[tuple[str, str, str]]:
    fresh = list(
        Notification.objects.exclude(pk__in=seen).select_related("user", "team").order_by("user__username")
    )
    seen.update(n.pk for n in fresh)
    return [(n.user.username, n.team.name, n.message) for n in fresh]


def test_a_complaint_goes_service_warehouse_finance_service_and_each_team_is_told(
    desk, django_capture_on_commit_callbacks
):
    li, wu, fei = desk["agent_li"], desk["warehouse_wu"], desk["finance_fei"]
    layer = get_channel_layer()
    channels = {}
    for name in ("agent_li", "warehouse_wu", "finance_fei", "agent_bob"):
        channels[name] = async_to_sync(layer.new_channel)()
        async_to_sync(layer.group_add)(f"user.{desk[name].pk}", channels[name])
    seen: set[int] = set()
    customer = Customer.objects.create(display_name="Zhang Min", email="zhang@example.com")

    # 1. the customer's complaint opens in customer service (Investigating)
    with django_capture_on_commit_callbacks(execute=True):
        ticket = do_create_ticket(
            actor=li, customer=customer, subject="Vase arrived broken", type="complaint"
        )
    ref = ticket.reference
    assert new_notices(seen) == [
        ("agent_li", "Service CN", f"{ref} “Vase arrived broken” is now with Service CN"),
        ("manager", "Service CN", f"{ref} “Vase arrived broken” is now with Service CN"),
    ]

    # 2. customer service hands it to the warehouse to check the parcel
    with django_capture_on_commit_callbacks(execute=True):
        do_transition(
            ticket=ticket, to_stage="warehouse_check", actor=li, note="Photos attached; check SO-88"
        )
    ticket.refresh_from_db()
    assert (ticket.team.name, ticket.assignee_id, ticket.status) == ("Warehouse", None, "open")
    assert new_notices(seen) == [
        ("warehouse_wu", "Warehouse", f"{ref} “Vase arrived broken” is now with Warehouse")
    ]
    live = async_to_sync(layer.receive)(channels["warehouse_wu"])
    assert live["payload"]["type"] == "workflows.notification" and live["payload"]["team"] == "Warehouse"

    # a step the flow does not have is refused, changes nothing and tells nobody
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ValidationFailed) as exc:
        do_transition(ticket=ticket, to_stage="resolved", actor=wu)
    assert exc.value.fields["stage"] == (
        "Cannot go from Warehouse check to Resolved: allowed next steps are Refund, Back to customer service."
    )
    assert new_notices(seen) == []

    # 3. the warehouse confirms transit damage and passes it to finance
    with django_capture_on_commit_callbacks(execute=True):
        do_transition(ticket=ticket, to_stage="refund", actor=wu, note="Parcel crushed in transit")
    assert Ticket.objects.get(pk=ticket.pk).team.name == "Finance"
    assert new_notices(seen) == [
        ("finance_fei", "Finance", f"{ref} “Vase arrived broken” is now with Finance")
    ]

    # 4. finance refunds; the case goes back to customer service, solved
    with django_capture_on_commit_callbacks(execute=True):
        do_transition(ticket=ticket, to_stage="resolved", actor=fei, fields={"refund_amount": "129.00"})
    ticket.refresh_from_db()
    assert (ticket.team.name, ticket.status, ticket.custom_fields) == (
        "Service CN",
        "solved",
        {"refund_amount": 129.0},
    )
    assert new_notices(seen) == [
        ("agent_li", "Service CN", f"{ref} “Vase arrived broken” is now with Service CN"),
        ("manager", "Service CN", f"{ref} “Vase arrived broken” is now with Service CN"),
    ]

    # the trail: every step, who took it, and one rule run per handoff
    steps = list(
        TicketFlowStep.objects.filter(ticket=ticket).values_list("from_key", "to_key", "actor__username")
    )
    assert steps == [
        ("", "investigating", "agent_li"),
        ("investigating", "warehouse_check", "agent_li"),
        ("warehouse_check", "refund", "warehouse_wu"),
        ("refund", "resolved", "finance_fei"),
    ]
    runs = RuleRun.objects.filter(subject_type="ticket", subject_id=ticket.pk).order_by("at", "id")
    assert [(r.rule_name, r.event_name, r.status) for r in runs] == [
        (f"Complaint handed to {team}", "ticket.stage_changed", "done")
        for team in ("Service CN", "Warehouse", "Finance", "Service CN")
    ]
    # nobody outside the three teams heard about it
    assert not Notification.objects.filter(user=desk["agent_bob"]).exists()
