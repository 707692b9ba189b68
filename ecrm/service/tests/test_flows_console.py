"""Ticket flows as people and integrations reach them: the ticket page's stage panel and its buttons,
the flows pages (list, form editor with validation, diagram), the REST API, and YAML export/import
(console, library functions and management commands)."""

from __future__ import annotations

import copy

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from ecrm.service.demo import COMPLAINT_FLOW, seed_ticket_flows
from ecrm.service.flows.models import FlowStage, TicketFlow, TicketFlowState
from ecrm.service.flows.yaml import export_machines, import_machines
from ecrm.service.services import do_create_ticket

from . import factories


@pytest.fixture
def flows(cast):
    seed_ticket_flows()
    from ecrm.core.models import User

    return {u.username: u for u in User.objects.all()}


def complaint(actor):
    return do_create_ticket(
        actor=actor, customer=factories.customer(), subject="Broken vase", type="complaint"
    )


def stage_of(ticket) -> str:
    return TicketFlowState.objects.get(ticket=ticket).stage.key


# --- the ticket page -----------------------------------------------------------------------------------


def test_the_stage_panel_shows_the_stage_and_the_steps_and_a_step_works(flows, login):
    ticket = complaint(flows["agent_li"])
    client = login("agent_li")
    page = client.get(f"/service/{ticket.pk}/").content.decode()
    assert 'data-stage="investigating"' in page
    for key in ("warehouse_check", "waiting_customer", "resolved"):
        assert f'data-to="{key}"' in page
    assert 'data-to="refund"' not in page
    # a refused step (not in the machine) comes back as a message; nothing moves
    response = client.post(f"/service/{ticket.pk}/stage/", {"to": "refund"}, follow=True)
    assert (
        "Cannot go from Investigating to Refund: allowed next steps are Warehouse check"
        in response.content.decode()
    )
    assert stage_of(ticket) == "investigating"
    response = client.post(f"/service/{ticket.pk}/stage/", {"to": "warehouse_check", "note": "check SO-1"})
    assert response.status_code == 302 and stage_of(ticket) == "warehouse_check"
    assert response["Location"] == "/service/"  # handed to a team Li is not in: back to the list
    # now the warehouse's: Wu sees the panel with his steps; Li no longer sees the ticket
    assert client.get(f"/service/{ticket.pk}/").status_code == 404
    client.force_login(flows["warehouse_wu"])
    page = client.get(f"/service/{ticket.pk}/").content.decode()
    assert 'data-stage="warehouse_check"' in page and 'data-to="refund"' in page
    assert "check SO-1" in page  # the handoff note in the history


def test_a_step_another_team_owns_shows_disabled_with_the_reason(flows, client):
    from ecrm.service.flows.services import do_transition
    from ecrm.service.models import Ticket

    ticket = complaint(flows["agent_li"])
    do_transition(ticket=ticket, to_stage="warehouse_check", actor=flows["agent_li"], note="x")
    Ticket.objects.filter(pk=ticket.pk).update(
        assignee=flows["agent_bob"]
    )  # Bob sees it, is not in Warehouse
    client.force_login(flows["agent_bob"])
    form = (
        client.get(f"/service/{ticket.pk}/").content.decode().split('data-to="refund"')[1].split("</form>")[0]
    )
    assert 'disabled title="Only members of Warehouse may take the step “Refund”."' in form
    client.force_login(flows["manager"])  # team limits do not bind managers
    form = (
        client.get(f"/service/{ticket.pk}/").content.decode().split('data-to="refund"')[1].split("</form>")[0]
    )
    assert "disabled" not in form


def test_an_old_ticket_can_start_its_flow_from_the_panel(flows, login):
    ticket = do_create_ticket(
        actor=flows["agent_li"], customer=factories.customer(), subject="Old", type="question"
    )
    from ecrm.service.services import do_update_ticket

    do_update_ticket(ticket=ticket, actor=flows["agent_li"], changes={"type": "complaint"})
    client = login("agent_li")
    assert 'data-action="start-flow"' in client.get(f"/service/{ticket.pk}/").content.decode()
    assert client.post(f"/service/{ticket.pk}/stage/", {"start": "1"}).status_code == 302
    assert stage_of(ticket) == "investigating"


def test_no_panel_for_a_type_without_a_flow(flows, login):
    ticket = do_create_ticket(
        actor=flows["agent_li"], customer=factories.customer(), subject="Q", type="question"
    )
    page = login("agent_li").get(f"/service/{ticket.pk}/").content.decode()
    assert 'id="flow-panel"' not in page


# --- the flows pages -----------------------------------------------------------------------------------


def test_only_configurers_reach_the_flows_pages(flows, login, client):
    for who in ("agent_li", "marketer", "nobody"):
        client.force_login(flows[who])
        assert client.get("/service/flows/").status_code == 403
        assert client.post("/service/flows/new/", {"name": "x"}).status_code == 403
    assert TicketFlow.objects.count() == 1
    client.force_login(flows["manager"])
    page = client.get("/service/flows/").content.decode()
    assert "Complaint" in page and "Warehouse check" in page


def _form(stages, transitions, **top):
    data = {
        "name": "Tech",
        "ticket_type": "technical",
        "description": "",
        "active": "1",
        "business_hours": "1",
        **top,
    }
    for i, s in enumerate(stages):
        for k in ("key", "label", "team", "sla_minutes", "status"):
            data[f"stage-{i}-{k}"] = s.get(k, "")
        if s.get("initial"):
            data["initial"] = str(i)
        if s.get("final"):
            data[f"stage-{i}-final"] = "1"
    for i, t in enumerate(transitions):
        for k in ("from", "to", "label", "requires"):
            data[f"tr-{i}-{k}"] = t.get(k, "")
        data[f"tr-{i}-teams"] = t.get("teams", [])
        data[f"tr-{i}-roles"] = t.get("roles", [])
    # the editor always posts some empty rows too
    data[f"stage-{len(stages)}-key"] = ""
    data[f"tr-{len(transitions)}-from"] = ""
    return data


def test_the_form_editor_creates_a_flow_and_refuses_an_invalid_one(flows, login):
    client = login("manager")
    assert client.get("/service/flows/new/").status_code == 200
    stages = [
        {
            "key": "triage",
            "label": "Triage",
            "team": "Service EN",
            "sla_minutes": "60",
            "status": "open",
            "initial": 1,
        },
        {"key": "fixed", "label": "Fixed", "team": "Service EN", "status": "solved", "final": 1},
    ]
    bad = _form(stages, [{"from": "triage", "to": "nowhere"}])
    response = client.post("/service/flows/new/", bad)
    assert response.status_code == 422
    page = response.content.decode()
    assert "No stage has the key “nowhere”." in page and 'value="triage"' in page  # the rows come back
    assert not TicketFlow.objects.filter(name="Tech").exists()
    good = _form(stages, [{"from": "triage", "to": "fixed", "label": "Fix", "roles": ["agent", "manager"],
                           "teams": ["Service EN"], "requires": "note"}])  # fmt: skip
    response = client.post("/service/flows/new/", good)
    flow = TicketFlow.objects.get(name="Tech")
    assert response.status_code == 302 and response["Location"] == f"/service/flows/{flow.pk}/"
    assert [(s.key, s.team.name, s.sla_minutes, s.status, s.is_initial, s.is_final) for s in flow.stages.all()] == [
        ("triage", "Service EN", 60, "open", True, False), ("fixed", "Service EN", None, "solved", False, True),
    ]  # fmt: skip
    t = flow.transitions.get()
    assert (t.label, t.roles, [x.name for x in t.teams.all()], t.required_fields) == (
        "Fix", ["agent", "manager"], ["Service EN"], ["note"],
    )  # fmt: skip
    page = client.get(f"/service/flows/{flow.pk}/").content.decode()
    assert 'id="flow-diagram"' in page and 'data-stage="fixed"' in page
    # editing through the same form: rename a label, version 2
    good["stage-1-label"] = "Fixed and verified"
    assert client.post(f"/service/flows/{flow.pk}/", good).status_code == 302
    flow.refresh_from_db()
    assert flow.version == 2 and FlowStage.objects.get(flow=flow, key="fixed").label == "Fixed and verified"


def test_the_flows_list_has_a_query_budget(flows, login, django_assert_max_num_queries):
    client = login("admin")
    for i in range(5):
        d = copy.deepcopy(COMPLAINT_FLOW)
        d.update(name=f"Complaint {i}", active=False)
        import_machines({"ticket_flows": [d]})
    with django_assert_max_num_queries(12):
        assert client.get("/service/flows/").status_code == 200


# --- the API -------------------------------------------------------------------------------------------


def test_api_lists_flows_and_moves_a_ticket(flows, api, api_read):
    ticket = complaint(flows["agent_li"])
    body = api_read.get("/api/v1/service/flows").json()
    assert [f["name"] for f in body] == ["Complaint"]
    assert (
        body[0]["stages"][0]["key"] == "investigating"
        and body[0]["transitions"][0]["from"] == "investigating"
    )
    stage = api_read.get(f"/api/v1/service/tickets/{ticket.pk}/stage").json()
    assert (stage["stage"], stage["team"]) == ("investigating", "Service CN")
    assert [s["to"] for s in stage["next_steps"]] == ["warehouse_check", "waiting_customer", "resolved"]
    response = api.post(f"/api/v1/service/tickets/{ticket.pk}/stage", {"to": "refund"})
    assert response.status_code == 422
    assert response.json()["code"] == "transition_refused"
    assert response.json()["fields"]["stage"] == (
        "Cannot go from Investigating to Refund: allowed next steps are Warehouse check, Ask the customer, Resolved."
    )
    response = api.post(f"/api/v1/service/tickets/{ticket.pk}/stage", {"to": "warehouse_check"})
    assert response.status_code == 422 and response.json()["fields"] == {
        "note": "The step “Warehouse check” needs a note."
    }
    assert api_read.post(f"/api/v1/service/tickets/{ticket.pk}/stage", {"to": "warehouse_check",
                         "note": "x"}).status_code == 403  # fmt: skip
    response = api.post(
        f"/api/v1/service/tickets/{ticket.pk}/stage", {"to": "warehouse_check", "note": "photos"}
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["stage"], body["team"], [h["to"] for h in body["history"]]) == (
        "warehouse_check", "Warehouse", ["investigating", "warehouse_check"],
    )  # fmt: skip
    assert stage_of(ticket) == "warehouse_check"


# --- YAML ----------------------------------------------------------------------------------------------


def test_yaml_round_trip_is_equal(flows):
    first = export_machines()
    text = yaml.safe_dump(first, allow_unicode=True, sort_keys=False)
    TicketFlow.objects.all().delete()
    report = import_machines(yaml.safe_load(text))
    assert report == {
        "ok": True,
        "dry_run": False,
        "machines": [{"name": "Complaint", "action": "created", "errors": {}}],
    }
    assert export_machines() == first
    assert import_machines(yaml.safe_load(text))["machines"][0]["action"] == "unchanged"


def test_import_validates_everything_first_and_reports_per_machine(flows):
    good = copy.deepcopy(COMPLAINT_FLOW)
    good.update(name="Delivery", ticket_type="delivery_problem")
    bad = copy.deepcopy(COMPLAINT_FLOW)
    bad.update(name="Broken", ticket_type="technical")
    bad["stages"][0]["initial"] = False
    report = import_machines({"ticket_flows": [good, bad]})
    assert report["ok"] is False
    assert report["machines"] == [
        {"name": "Delivery", "action": "created", "errors": {}},
        {
            "name": "Broken",
            "action": "invalid",
            "errors": {"stages": "Mark exactly one stage as initial (now 0)."},
        },
    ]
    assert sorted(TicketFlow.objects.values_list("name", flat=True)) == ["Complaint"]  # nothing saved
    report = import_machines({"ticket_flows": [good]}, dry_run=True)
    assert report["ok"] and report["machines"][0]["action"] == "created"
    assert not TicketFlow.objects.filter(name="Delivery").exists()
    assert import_machines({"flows": []})["ok"] is False


def test_management_commands_round_trip(flows, tmp_path):
    path = tmp_path / "flows.yaml"
    call_command("ticket_flows_export", output=str(path))
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["ticket_flows"][0]["stages"][2]["sla_minutes"] = 720
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    call_command("ticket_flows_import", str(path), "--dry-run")
    assert FlowStage.objects.get(key="warehouse_check").sla_minutes == 480
    call_command("ticket_flows_import", str(path))
    assert FlowStage.objects.get(key="warehouse_check").sla_minutes == 720
    assert TicketFlow.objects.get().version == 2
    data["ticket_flows"][0]["stages"][2]["team"] = "Nobody's"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(CommandError):
        call_command("ticket_flows_import", str(path))


def test_console_export_and_import(flows, login):
    client = login("admin")
    response = client.get("/service/flows/export.yaml")
    assert response["Content-Type"].startswith("application/yaml")
    data = yaml.safe_load(response.content)
    data["ticket_flows"][0]["description"] = "Edited in git"
    text = yaml.safe_dump(data, allow_unicode=True)
    response = client.post("/service/flows/import/", {"text": text, "dry_run": "1"})
    assert response.status_code == 200 and 'data-action="updated"' in response.content.decode()
    assert TicketFlow.objects.get().description != "Edited in git"
    client.post("/service/flows/import/", {"text": text})
    assert TicketFlow.objects.get().description == "Edited in git"
    response = client.post("/service/flows/import/", {"text": "ticket_flows: [: bad"})
    assert response.status_code == 422 and "This is not valid YAML" in response.content.decode()
