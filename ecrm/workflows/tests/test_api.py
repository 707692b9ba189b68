"""The workflows API: CRUD with field-level 422s, permissions (refused and nothing changed), dry run,
run log, YAML export/import through HTTP."""

from __future__ import annotations

import orjson
import pytest

from ecrm.core.models import AuditLog
from ecrm.service.services import do_create_ticket
from ecrm.workflows.models import Rule

from .factories import customer, rule, team_with

GOOD = {
    "name": "VIP complaints",
    "triggers": ["ticket.created"],
    "conditions": {
        "all": [
            {"field": "ticket.type", "op": "eq", "value": "complaint"},
            {
                "any": [
                    {"field": "customer.tags", "op": "contains", "value": "VIP"},
                    {"field": "ticket.priority", "op": "in", "value": ["high", "urgent"]},
                ]
            },
        ]
    },  # fmt: skip
    "actions": [{"type": "notify_team", "team": "Ops", "message": "VIP: {{ ticket.reference }}"}],
}


@pytest.fixture
def ops(cast):
    return team_with("Ops", "manager")


def test_create_read_update_delete(api, ops):
    r = api.post("/api/v1/workflows/rules", GOOD)
    assert r.status_code == 201, r.content
    body = r.json()
    assert (body["name"], body["position"], body["is_active"]) == ("VIP complaints", 0, True)
    assert body["conditions"]["all"][1]["any"][0] == {
        "field": "customer.tags",
        "op": "contains",
        "value": "vip",
    }
    rid = body["id"]
    assert api.get(f"/api/v1/workflows/rules/{rid}").json()["actions"] == GOOD["actions"]
    changed = {**GOOD, "stop_processing": True, "triggers": ["ticket.created", "ticket.updated"]}
    r = api.put(f"/api/v1/workflows/rules/{rid}", changed)
    assert r.status_code == 200 and r.json()["triggers"] == ["ticket.created", "ticket.updated"]
    r = api.post(f"/api/v1/workflows/rules/{rid}/active", {"active": False})
    assert r.json()["is_active"] is False
    assert [a.action for a in AuditLog.objects.filter(object_type="workflows.rule").order_by("id")] == [
        "workflow_rule.create", "workflow_rule.update", "workflow_rule.active",
    ]  # fmt: skip
    assert api.delete(f"/api/v1/workflows/rules/{rid}").status_code == 204
    assert not Rule.objects.exists()


def test_invalid_rules_are_422_with_field_paths_and_nothing_is_saved(api, ops):
    bad = {
        "name": "Bad",
        "triggers": ["order.placed", "ticket.exploded"],
        "conditions": {"all": [
            {"field": "ticket.priority", "op": "eq", "value": "high"},   # not reachable from an order
            {"field": "order.total", "op": "contains", "value": "1"},    # wrong operator for a number
            {"field": "order.nope", "op": "eq", "value": 1},
            {"any": [{"field": "order.total", "op": "gt", "value": "lots"},
                     {"field": "customer.email", "op": "matches", "value": "(unclosed"}]},
        ]},
        "actions": [
            {"type": "notify_team", "team": "Nobody's team", "message": "{% if %}"},
            {"type": "assign", "team": "Ops"},
            {"type": "teleport"},
        ],
    }  # fmt: skip
    r = api.post("/api/v1/workflows/rules", bad)
    assert r.status_code == 422
    fields = r.json()["fields"]
    assert fields == {
        "triggers.1": "unknown trigger 'ticket.exploded'",
        "conditions.all.0.field": "ticket fields are not available for this rule's triggers",
        "conditions.all.1.op": "contains does not apply to a number field; use one of eq, ne, in, not_in, "
        "is_set, is_empty, changed, changed_to, changed_from, gt, gte, lt, lte",
        "conditions.all.2.field": "unknown field 'order.nope'",
        "conditions.all.3.any.0.value": "must be a number",
        "conditions.all.3.any.1.value": "not a valid regular expression: missing ), unterminated subpattern at position 0",
        "actions.0.team": 'no team named "Nobody\'s team"',
        "actions.0.message": "template syntax error: Unexpected end of expression in if tag.",
        "actions.1.type": "assign cannot act on order events",
        "actions.2.type": "unknown action 'teleport'; use one of assign, route, set_field, add_tag, change_status, "
        "send_email, notify_team, create_task, webhook",
    }
    assert not Rule.objects.exists()
    r = api.post("/api/v1/workflows/rules", {**GOOD, "actions": "notify"})
    assert r.status_code == 422 and "actions" in r.json()["fields"]


def test_permissions(api_read, api_anon, login, cast, ops):
    assert api_anon.get("/api/v1/workflows/rules").status_code == 401
    r = api_read.post("/api/v1/workflows/rules", GOOD)
    assert r.status_code == 403 and r.json()["code"] == "read_only_key"
    assert api_read.get("/api/v1/workflows/rules").status_code == 200
    client = login("manager")  # workflows.view but not configure
    r = client.post("/api/v1/workflows/rules", orjson.dumps(GOOD), content_type="application/json")
    assert r.status_code == 403 and r.json()["code"] == "forbidden:workflows.configure"
    assert client.get("/api/v1/workflows/rules").status_code == 200
    client = login("agent_li")
    assert client.get("/api/v1/workflows/rules").status_code == 403
    assert client.get("/api/v1/workflows/runs").status_code == 403
    assert not Rule.objects.exists()
    client = login("admin")
    r = client.post("/api/v1/workflows/rules", orjson.dumps(GOOD), content_type="application/json")
    assert r.status_code == 201


def test_dry_run_lists_the_recent_records_the_rule_would_match(api, cast, ops):
    buyer = customer()
    from ecrm.customers.services import do_add_tag

    do_add_tag(customer=buyer, name="VIP", actor=None)
    other = customer("Li Lei", "li@example.com")
    match1 = do_create_ticket(actor=cast["agent_li"], customer=buyer, subject="Broken", type="complaint")
    do_create_ticket(actor=cast["agent_li"], customer=buyer, subject="Question")  # not a complaint
    do_create_ticket(
        actor=cast["agent_li"], customer=other, subject="Meh", type="complaint"
    )  # not VIP, normal
    match2 = do_create_ticket(
        actor=cast["agent_li"], customer=other, subject="Bad", type="complaint", priority="urgent"
    )
    r = api.post("/api/v1/workflows/dry-run", {**GOOD, "limit": 50})
    assert r.status_code == 200
    body = r.json()
    assert (body["checked"], body["matched"]) == (4, 2)
    assert [x["label"] for x in body["records"]] == [f"{match2.reference} Bad", f"{match1.reference} Broken"]
    assert body["records"][0]["url"] == f"/service/{match2.pk}/"
    assert not Rule.objects.exists()  # nothing saved
    r = api.post("/api/v1/workflows/dry-run", {**GOOD, "conditions": {"all": [{"field": "x.y", "op": "eq"}]}})
    assert r.status_code == 422 and r.json()["fields"] == {"conditions.all.0.field": "unknown field 'x.y'"}


def test_run_log_filters(api, cast, ops, django_capture_on_commit_callbacks):
    a = rule("a", actions=[{"type": "notify_team", "team": "Ops", "message": "a"}])
    rule("b", actions=[{"type": "change_status", "target": "order", "status": "paid"}])
    with django_capture_on_commit_callbacks(execute=True):
        t = do_create_ticket(actor=cast["agent_li"], customer=customer(), subject="x")
    body = api.get("/api/v1/workflows/runs").json()
    assert [(i["rule_name"], i["status"]) for i in body["items"]] == [("b", "failed"), ("a", "done")]
    body = api.get("/api/v1/workflows/runs", rule=a.pk).json()
    assert [(i["rule_name"], i["subject_id"], i["event_name"]) for i in body["items"]] == [
        ("a", t.pk, "ticket.created")
    ]
    assert api.get("/api/v1/workflows/runs", status="failed").json()["items"][0]["actions"][0]["ok"] is False


def test_yaml_export_and_import_over_http(api, ops):
    api.post("/api/v1/workflows/rules", GOOD)
    r = api.get("/api/v1/workflows/export")
    assert r.status_code == 200 and r["Content-Type"].startswith("application/yaml")
    text = r.content.decode()
    assert "name: VIP complaints" in text
    Rule.objects.all().delete()
    bad = text.replace("team: Ops", "team: Nope")
    r = api.post("/api/v1/workflows/import", {"yaml": bad})
    assert r.status_code == 422
    assert r.json()["rules"] == [
        {"name": "VIP complaints", "action": "invalid", "errors": {"actions.0.team": "no team named 'Nope'"}}
    ]
    assert not Rule.objects.exists()
    r = api.post("/api/v1/workflows/import", {"yaml": text, "dry_run": True})
    assert r.status_code == 200 and r.json()["rules"][0]["action"] == "created" and not Rule.objects.exists()
    r = api.post("/api/v1/workflows/import", {"yaml": text})
    assert r.status_code == 200 and Rule.objects.get().name == "VIP complaints"
    assert api.get("/api/v1/workflows/export").content.decode() == text
