"""Operators on every field type, and/or nesting, and the YAML round trip (rules and ticket flows)."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml
from django.core.management import call_command
from django.utils import timezone

from ecrm.core import events
from ecrm.customers.services import do_add_tag
from ecrm.service.models import Ticket
from ecrm.service.services import do_create_ticket
from ecrm.workflows.conditions import ConditionError, compile_tree, validate_tree
from ecrm.workflows.fields import Context
from ecrm.workflows.models import Rule
from ecrm.workflows.yaml_io import export_yaml, import_yaml

from .factories import customer, rule, team_with


@pytest.fixture
def ticket(cast):
    team_with("Ops", "agent_li")
    buyer = customer(city="Hangzhou")
    do_add_tag(customer=buyer, name="VIP", actor=None)
    t = do_create_ticket(actor=cast["agent_li"], customer=buyer, subject="Parcel #A-123 lost", priority="high",
                         type="complaint", tags=["Fragile"])  # fmt: skip
    Ticket.objects.filter(pk=t.pk).update(created_at=timezone.now() - dt.timedelta(hours=5))
    return t


def check(ticket, leaf, data=None) -> bool:
    tree = validate_tree({"all": [leaf]})
    event = events.Event(name="ticket.updated", subject_type="ticket", subject_id=ticket.pk, data=data or {})
    return compile_tree(tree)(Context(event))


@pytest.mark.parametrize(
    ("leaf", "expected"),
    [
        ({"field": "ticket.priority", "op": "eq", "value": "high"}, True),
        ({"field": "ticket.priority", "op": "ne", "value": "high"}, False),
        ({"field": "ticket.priority", "op": "in", "value": "low, high"}, True),
        ({"field": "ticket.priority", "op": "not_in", "value": ["low", "high"]}, False),
        ({"field": "ticket.subject", "op": "contains", "value": "LOST"}, True),
        ({"field": "ticket.subject", "op": "matches", "value": r"#[A-Z]-\d{3}"}, True),
        ({"field": "ticket.subject", "op": "matches", "value": r"^lost"}, False),
        ({"field": "ticket.assignee", "op": "is_empty"}, True),
        ({"field": "ticket.team", "op": "is_set"}, False),
        ({"field": "ticket.tags", "op": "contains", "value": "fragile"}, True),
        ({"field": "ticket.tags", "op": "not_contains", "value": "fragile"}, False),
        ({"field": "customer.tags", "op": "contains", "value": "vip"}, True),
        ({"field": "customer.city", "op": "eq", "value": "Hangzhou"}, True),
        ({"field": "ticket.number", "op": "gt", "value": 1000}, True),
        ({"field": "ticket.number", "op": "lte", "value": "1000"}, False),
        ({"field": "ticket.created_at", "op": "within_last", "value": "6h"}, True),
        ({"field": "ticket.created_at", "op": "within_last", "value": "4h"}, False),
        ({"field": "ticket.created_at", "op": "older_than", "value": "4h"}, True),
        ({"field": "ticket.created_at", "op": "lt", "value": "2999-01-01"}, True),
        ({"field": "ticket.resolution_breached", "op": "eq", "value": "false"}, True),
        ({"field": "customer.score.churn_band", "op": "is_empty"}, True),  # no analytics run yet
        ({"field": "order.total", "op": "is_empty"}, True),  # the ticket has no order
        ({"field": "event.chain", "op": "eq", "value": 0}, True),
    ],
)
def test_operators(ticket, leaf, expected):
    assert check(ticket, leaf) is expected


def test_changes_come_from_the_event(ticket, cast):
    changes = {
        "changes": {
            "status": ["new", "pending"],
            "team_id": [None, cast["agent_li"].teams.get(name="Ops").pk],
        }
    }
    assert check(ticket, {"field": "ticket.status", "op": "changed"}, changes) is True
    assert check(ticket, {"field": "ticket.status", "op": "changed_to", "value": "pending"}, changes) is True
    assert check(ticket, {"field": "ticket.status", "op": "changed_from", "value": "open"}, changes) is False
    assert check(ticket, {"field": "ticket.team", "op": "changed_to", "value": "Ops"}, changes) is True
    assert check(ticket, {"field": "ticket.priority", "op": "changed"}, changes) is False
    assert check(ticket, {"field": "event.changes.status.old", "op": "eq", "value": "new"}, changes) is True


def test_nesting(ticket):
    tree = {"any": [
        {"all": [{"field": "ticket.priority", "op": "eq", "value": "low"},
                 {"field": "customer.tags", "op": "contains", "value": "vip"}]},
        {"all": [{"field": "ticket.type", "op": "eq", "value": "complaint"},
                 {"any": [{"field": "customer.city", "op": "eq", "value": "Beijing"},
                          {"field": "ticket.tags", "op": "contains", "value": "fragile"}]}]},
    ]}  # fmt: skip
    event = events.Event(name="ticket.created", subject_type="ticket", subject_id=ticket.pk)
    assert compile_tree(validate_tree(tree))(Context(event)) is True
    tree["any"][1]["all"][1]["any"][1]["value"] = "glass"
    assert compile_tree(validate_tree(tree))(Context(event)) is False
    assert compile_tree({})(Context(event)) is True  # no conditions: always


def test_validation_names_each_bad_leaf(db):
    with pytest.raises(ConditionError) as exc:
        validate_tree({"all": [
            {"field": "ticket.priority", "op": "eq", "value": "extreme"},
            {"field": "ticket.created_at", "op": "within_last", "value": "soon"},
            {"field": "ticket.team", "op": "eq", "value": "Nowhere"},
            {"field": "ticket.subject", "op": "matches", "value": "x" * 201},
            {"all": [], "any": []},
            {"field": "ticket.subject", "op": "matches", "value": r"^(\w+\s?)+$"},
        ]})  # fmt: skip
    assert exc.value.errors == {
        "conditions.all.0.value": "must be one of low, normal, high, urgent",
        "conditions.all.1.value": "must be a duration like 30m, 12h, 3d or 2w",
        "conditions.all.2.value": "no team named 'Nowhere'",
        "conditions.all.3.value": "must be a regular expression of 1 to 200 characters",
        "conditions.all.4": "a group has exactly one key, all or any",
        "conditions.all.5.value": "nested repetition such as (a+)+ is not allowed: it can take forever",
    }


def test_yaml_round_trip_is_equal_and_includes_ticket_flows(cast, tmp_path):
    from ecrm.service.flows.models import TicketFlow

    team_with("Ops", "manager")
    rule("First", triggers=["ticket.created", "ticket.updated"], description="with 中文 text",
         conditions={"any": [{"field": "ticket.priority", "op": "in", "value": ["high", "urgent"]},
                             {"all": [{"field": "customer.tags", "op": "contains", "value": "vip"}]}]},
         actions=[{"type": "notify_team", "team": "Ops", "message": "{{ ticket.reference }} 紧急"}],
         stop_processing=True)  # fmt: skip
    rule("Second", triggers=["schedule"], schedule_subject="ticket", schedule_every=120, is_active=False,
         actions=[{"type": "create_task", "title": "Follow up", "team": "Ops", "due_in": "1d"}])  # fmt: skip
    first = export_yaml()
    data = yaml.safe_load(first)
    assert [r["name"] for r in data["rules"]] == ["First", "Second"]
    assert data["rules"][1]["schedule"] == {"subject": "ticket", "every_minutes": 120}
    assert "ticket_flows" in data
    path = tmp_path / "rules.yaml"
    call_command("workflows_export", str(path))
    assert path.read_text(encoding="utf-8") == first
    Rule.objects.all().delete()
    report = import_yaml(first)
    assert report["ok"] and [r["action"] for r in report["rules"]] == ["created", "created"]
    assert export_yaml() == first
    report = import_yaml(first, dry_run=True)
    assert [r["action"] for r in report["rules"]] == ["unchanged", "unchanged"]
    # a flow in the file that is invalid stops the whole import, rules included
    broken = dict(data)
    broken["rules"] = [{**data["rules"][0], "name": "Third"}]
    broken["ticket_flows"] = [{"name": "Broken flow", "ticket_type": "complaint", "stages": []}]
    report = import_yaml(yaml.safe_dump(broken))
    assert report["ok"] is False and report["rules"][0]["action"] == "created"
    assert not Rule.objects.filter(name="Third").exists()
    assert not TicketFlow.objects.filter(name="Broken flow").exists()


def test_import_command_reports_errors_per_rule_and_saves_nothing(cast, tmp_path, capsys):
    team_with("Ops", "manager")
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"format": "ecrm.workflows/1", "rules": [
        {"name": "Good", "triggers": ["ticket.created"], "actions": [{"type": "notify_team", "team": "Ops", "message": "x"}]},
        {"name": "Bad", "triggers": ["ticket.created"], "conditions": {"all": [{"field": "ticket.nope", "op": "eq"}]},
         "actions": [{"type": "notify_team", "team": "Ops", "message": "x"}]},
        {"name": "Good", "triggers": ["ticket.created"], "actions": []},
    ]}))  # fmt: skip
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("workflows_import", str(path))
    out = capsys.readouterr().out
    assert "rule Bad: invalid\n    conditions.all.0.field: unknown field 'ticket.nope'" in out
    assert "rule Good: invalid\n    name: This name appears twice in the file." in out
    assert not Rule.objects.exists()
