"""Ticket flows: validation of a machine, allowed and refused steps, what each stage does to the
ticket (team, assignee, status, stage SLA), history, events, and the stage SLA breach check."""

from __future__ import annotations

import copy
import datetime as dt

import pytest
from django.utils import timezone

from ecrm.core import events
from ecrm.core.audit import AuditLog
from ecrm.core.exceptions import NotFound, PermissionDenied, ValidationFailed
from ecrm.core.models import Team
from ecrm.service.demo import COMPLAINT_FLOW, seed_ticket_flows
from ecrm.service.flows import definition
from ecrm.service.flows.models import TicketFlow, TicketFlowState, TicketFlowStep
from ecrm.service.flows.services import check_stage_sla, do_save_flow, do_start_flow, do_transition, save_flow
from ecrm.service.models import BusinessCalendar, Ticket, TicketActivity, TicketComment
from ecrm.service.services import do_create_ticket, do_update_ticket

from . import factories

ALWAYS_OPEN = {str(d): [["00:00", "24:00"]] for d in range(7)}


@pytest.fixture
def flows(cast):
    """The demo complaint flow on a 24/7 calendar (stage SLAs are plain minutes), with its people."""
    BusinessCalendar.objects.create(name="24/7", timezone="UTC", weekly_hours=ALWAYS_OPEN, is_default=True)
    seed_ticket_flows()
    from ecrm.core.models import User

    people = {u.username: u for u in User.objects.all()}
    return {"flow": TicketFlow.objects.get(name="Complaint"), **people}


@pytest.fixture
def seen():
    got: list[events.Event] = []
    handler = got.append  # one bound method: unsubscribe compares by identity
    events.subscribe(handler, names=("ticket.", "sla."))
    yield got
    events.unsubscribe(handler)


def complaint(actor, **kw) -> Ticket:
    return do_create_ticket(
        actor=actor, customer=factories.customer(), subject="Parcel arrived broken", type="complaint", **kw
    )


def definition_with(**changes):
    d = copy.deepcopy(COMPLAINT_FLOW)
    d.update(changes)
    return d


# --- validation ---------------------------------------------------------------------------------------


def test_the_demo_flow_is_valid_and_round_trips(flows):
    assert definition.as_definition(flows["flow"]) == definition.normalise(COMPLAINT_FLOW)
    assert flows["flow"].version == 1


@pytest.mark.parametrize(
    ("mutate", "field", "message"),
    [
        (lambda d: d["stages"][0].update(initial=False), "stages", "Mark exactly one stage as initial (now 0)."),
        (lambda d: d["stages"][2].update(initial=True), "stages", "Mark exactly one stage as initial (now 2)."),
        (lambda d: d["transitions"].append({"from": "refund", "to": "nowhere"}), "transitions.8.to",
         "No stage has the key “nowhere”."),
        (lambda d: d["stages"][2].update(team="Warehous"), "stages.2.team", "No team is called “Warehous”."),
        (lambda d: d["transitions"].__setitem__(slice(None), [t for t in d["transitions"] if t["to"] != "resolved"]),
         "stages", "No final stage can be reached from the initial stage."),
        (lambda d: d["transitions"].__setitem__(slice(None), [t for t in d["transitions"] if t["to"] != "refund"]),
         "stages", "These stages cannot be reached from the initial stage: Refund."),
        (lambda d: d["stages"][1].update(key="Bad Key"), "stages.1.key",
         "Use lower-case letters, digits and underscores, starting with a letter."),
        (lambda d: d["transitions"][0].update(requires=["note", "parcel_no"]), "transitions.0.requires",
         "Not a ticket field: parcel_no (use “note” or a custom ticket field's key)."),
        (lambda d: d["transitions"][0].update(roles=["janitor"]), "transitions.0.roles",
         "Unknown roles janitor; use admin, manager, agent, marketer, analyst."),
        (lambda d: d["stages"][3].update(sla_minutes="soon"), "stages.3.sla_minutes",
         "A whole number of minutes, at least 1 (or empty: no SLA)."),
    ],
)  # fmt: skip
def test_an_invalid_machine_is_refused_with_the_reason(flows, mutate, field, message):
    d = definition_with(name="Complaint 2", active=False)
    mutate(d)
    with pytest.raises(ValidationFailed) as exc:
        do_save_flow(actor=flows["admin"], data=d)
    assert exc.value.fields[field] == message
    assert TicketFlow.objects.count() == 1


def test_one_active_flow_per_ticket_type(flows):
    with pytest.raises(ValidationFailed) as exc:
        do_save_flow(actor=flows["admin"], data=definition_with(name="Complaint B"))
    assert exc.value.fields["ticket_type"] == (
        "The flow “Complaint” is already active for this ticket type; switch it off first."
    )
    do_save_flow(actor=flows["admin"], data=definition_with(name="Complaint B", active=False))
    assert TicketFlow.objects.filter(ticket_type="complaint").count() == 2


def test_only_managers_and_admins_configure_flows_and_nothing_changes(flows):
    for who in ("agent_li", "marketer", "nobody"):
        with pytest.raises(PermissionDenied):
            do_save_flow(actor=flows[who], data=definition_with(name="Mine", active=False))
    assert TicketFlow.objects.count() == 1
    flow = do_save_flow(actor=flows["manager"], data=definition_with(name="Managers'", active=False))
    assert (
        flow.version == 1
        and AuditLog.objects.filter(action="ticket_flow.create", actor=flows["manager"]).count() == 1
    )


def test_editing_bumps_the_version_and_refuses_to_drop_a_stage_with_tickets(flows):
    flow = flows["flow"]
    ticket = complaint(flows["agent_li"])
    do_transition(ticket=ticket, to_stage="warehouse_check", actor=flows["agent_li"], note="check the parcel")
    d = definition_with()
    d["stages"] = [s for s in d["stages"] if s["key"] != "warehouse_check"]
    d["transitions"] = [t for t in d["transitions"] if "warehouse_check" not in (t["from"], t["to"])]
    d["transitions"].append({"from": "investigating", "to": "refund", "label": "Refund"})
    with pytest.raises(ValidationFailed) as exc:
        do_save_flow(actor=flows["admin"], data=d, flow=flow)
    assert exc.value.fields["stages"] == (
        "The stage “Warehouse check” cannot be removed: 1 open ticket(s) are in it. Move them on first, or keep the stage."
    )
    assert flow.stages.count() == 5
    # a non-destructive edit (a longer SLA) applies and bumps the version; the ticket keeps its place
    d = definition_with()
    d["stages"][2]["sla_minutes"] = 600
    result = save_flow(actor=flows["admin"], data=d, flow=flow)
    assert (result.action, result.flow.version) == ("updated", 2)
    assert save_flow(actor=flows["admin"], data=d, flow=result.flow).action == "unchanged"
    state = TicketFlowState.objects.get(ticket=ticket)
    assert (state.stage.key, state.flow_version) == ("warehouse_check", 1)


# --- entering the flow and moving along it -------------------------------------------------------------


def test_a_new_complaint_enters_investigating_with_the_service_team(
    flows, seen, django_capture_on_commit_callbacks
):
    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        ticket = complaint(flows["agent_bob"], team=Team.objects.get(name="Service EN"))
    ticket.refresh_from_db()
    state = TicketFlowState.objects.get(ticket=ticket)
    assert ticket.team.name == "Service CN" and ticket.status == "new"
    assert state.stage.key == "investigating" and state.flow_version == 1
    assert dt.timedelta(minutes=240) <= state.due_at - before <= dt.timedelta(minutes=241)
    assert [e.name for e in seen] == ["ticket.created", "ticket.stage_changed"]
    assert seen[0].data["fields"]["team_id"][1] == ticket.team_id
    assert seen[1].data["changes"] == {"stage": [None, "investigating"]}
    assert seen[1].data["machine"] == "Complaint" and seen[1].data["team"] == ticket.team_id
    # other types have no flow
    question = do_create_ticket(actor=flows["agent_li"], customer=ticket.customer, subject="Where is it?")
    assert not TicketFlowState.objects.filter(ticket=question).exists()


def test_a_refused_step_names_the_allowed_ones_and_changes_nothing(flows):
    ticket = complaint(flows["agent_li"])
    with pytest.raises(ValidationFailed) as exc:
        do_transition(ticket=ticket, to_stage="refund", actor=flows["agent_li"])
    message = "Cannot go from Investigating to Refund: allowed next steps are Warehouse check, Ask the customer, Resolved."
    assert exc.value.message == message and exc.value.fields == {"stage": message}
    with pytest.raises(ValidationFailed) as exc:
        do_transition(ticket=ticket, to_stage="moon", actor=flows["agent_li"])
    assert exc.value.fields["stage"].startswith(
        "Cannot go from Investigating to moon: allowed next steps are"
    )
    assert TicketFlowState.objects.get(ticket=ticket).stage.key == "investigating"
    assert TicketFlowStep.objects.filter(ticket=ticket).count() == 1


def test_the_ticket_form_cannot_move_a_ticket_around_its_flow(flows):
    """Status, team and type belong to the flow while the ticket is in it: the plain ticket edit is
    refused on those fields (other fields still change); at a final stage the ticket is free again."""
    ticket = complaint(flows["agent_li"])
    warehouse = Team.objects.get(name="Warehouse")
    for change in ({"status": "solved"}, {"team": warehouse}, {"type": "question"}):
        with pytest.raises(ValidationFailed) as exc:
            do_update_ticket(ticket=ticket, actor=flows["agent_li"], changes={**change, "priority": "high"})
        (field,) = exc.value.fields
        assert field == next(iter(change))
        assert "follows the Complaint flow (now at Investigating)" in exc.value.fields[field]
    ticket.refresh_from_db()
    assert (ticket.status, ticket.priority, ticket.type) == ("new", "normal", "complaint")
    # the same values resent by the form, with a real change elsewhere, pass
    do_update_ticket(ticket=ticket, actor=flows["agent_li"],
                     changes={"status": ticket.status, "team": ticket.team, "priority": "high"})  # fmt: skip
    ticket.refresh_from_db()
    assert ticket.priority == "high"
    do_transition(ticket=ticket, to_stage="resolved", actor=flows["agent_li"], note="sorted on the phone")
    do_update_ticket(ticket=ticket, actor=flows["agent_li"], changes={"status": "closed"})
    ticket.refresh_from_db()
    assert ticket.status == "closed"


def test_a_step_needs_its_note_and_fields(flows):
    ticket = complaint(flows["agent_li"])
    with pytest.raises(ValidationFailed) as exc:
        do_transition(ticket=ticket, to_stage="warehouse_check", actor=flows["agent_li"])
    assert exc.value.fields == {"note": "The step “Warehouse check” needs a note."}
    do_transition(ticket=ticket, to_stage="warehouse_check", actor=flows["agent_li"], note="photo attached")
    do_transition(
        ticket=ticket, to_stage="refund", actor=flows["warehouse_wu"], note="parcel damaged in transit"
    )
    with pytest.raises(ValidationFailed) as exc:
        do_transition(ticket=ticket, to_stage="resolved", actor=flows["finance_fei"])
    assert exc.value.fields == {"custom_fields.refund_amount": "The step “Refunded” needs refund_amount."}
    do_transition(
        ticket=ticket, to_stage="resolved", actor=flows["finance_fei"], fields={"refund_amount": "49.5"}
    )
    ticket.refresh_from_db()
    assert ticket.custom_fields == {"refund_amount": 49.5}


def test_only_the_owning_team_may_take_a_step(flows):
    ticket = complaint(flows["agent_li"])
    do_transition(ticket=ticket, to_stage="warehouse_check", actor=flows["agent_li"], note="check")
    with pytest.raises(NotFound):  # agent_li no longer sees a warehouse ticket at all
        do_transition(ticket=ticket, to_stage="refund", actor=flows["agent_li"], note="x")
    do_update_ticket(ticket=ticket, actor=flows["manager"], changes={"assignee": None})
    Team.objects.get(name="Warehouse").members.add(flows["agent_bob"])
    flows["agent_bob"].teams.remove(Team.objects.get(name="Warehouse"))
    # finance sees it only after it reaches them: the team rule refuses Fei with the reason
    Ticket.objects.filter(pk=ticket.pk).update(assignee=flows["finance_fei"])
    with pytest.raises(ValidationFailed) as exc:
        do_transition(ticket=ticket, to_stage="refund", actor=flows["finance_fei"], note="x")
    assert exc.value.fields["stage"] == (
        "Cannot go from Warehouse check to Refund: Only members of Warehouse may take the step “Refund”."
    )
    # a role limit binds managers too; team limits do not (they oversee every team)
    do_transition(ticket=ticket, to_stage="refund", actor=flows["manager"], note="escalated by the manager")
    assert TicketFlowState.objects.get(ticket=ticket).stage.key == "refund"


def test_role_limits(flows):
    d = definition_with()
    d["transitions"][2]["roles"] = ["manager"]  # investigating -> resolved: managers only
    do_save_flow(actor=flows["admin"], data=d, flow=flows["flow"])
    ticket = complaint(flows["agent_li"])
    with pytest.raises(ValidationFailed) as exc:
        do_transition(ticket=ticket, to_stage="resolved", actor=flows["agent_li"])
    assert (
        exc.value.fields["stage"]
        == "Cannot go from Investigating to Resolved: Only manager may take the step “Resolved”."
    )
    do_transition(ticket=ticket, to_stage="resolved", actor=flows["manager"])
    assert TicketFlowState.objects.get(ticket=ticket).stage.key == "resolved"


def test_each_stage_sets_team_status_assignee_and_sla_and_history_is_kept(
    flows, seen, django_capture_on_commit_callbacks
):
    li, wu, fei = flows["agent_li"], flows["warehouse_wu"], flows["finance_fei"]
    ticket = complaint(li, assignee=li)
    assert ticket.assignee == li and ticket.status == "open"
    with django_capture_on_commit_callbacks(execute=True):
        t0 = timezone.now()
        state = do_transition(ticket=ticket, to_stage="warehouse_check", actor=li, note="please check SO-1")
    ticket.refresh_from_db()
    assert (ticket.team.name, ticket.assignee, ticket.status) == ("Warehouse", None, "open")
    assert dt.timedelta(minutes=480) <= state.due_at - t0 <= dt.timedelta(minutes=481)
    assert (
        TicketComment.objects.get(ticket=ticket).body == "[Investigating → Warehouse check] please check SO-1"
    )
    assert [e.name for e in seen] == ["ticket.updated", "ticket.stage_changed"]
    assert seen[0].data["changes"]["assignee_id"] == [li.pk, None]
    assert seen[1].data["changes"] == {"stage": ["investigating", "warehouse_check"]}
    assert seen[1].data["team_name"] == "Warehouse" and seen[1].data["due_at"] == state.due_at.isoformat()
    do_transition(ticket=ticket, to_stage="refund", actor=wu, note="damaged")
    do_transition(ticket=ticket, to_stage="resolved", actor=fei, fields={"refund_amount": 20})
    ticket.refresh_from_db()
    assert (ticket.team.name, ticket.status) == ("Service CN", "solved") and ticket.solved_at is not None
    state = TicketFlowState.objects.get(ticket=ticket)
    assert state.due_at is None and state.stage.is_final
    steps = list(
        TicketFlowStep.objects.filter(ticket=ticket).values_list("from_key", "to_key", "actor__username")
    )
    assert steps == [
        ("", "investigating", "agent_li"), ("investigating", "warehouse_check", "agent_li"),
        ("warehouse_check", "refund", "warehouse_wu"), ("refund", "resolved", "finance_fei"),
    ]  # fmt: skip
    durations = list(TicketFlowStep.objects.filter(ticket=ticket).values_list("seconds_in_stage", flat=True))
    assert durations[0] is None and all(d >= 0 for d in durations[1:])
    assert AuditLog.objects.filter(action="ticket.stage_change", object_id=str(ticket.pk)).count() == 3
    assert TicketActivity.objects.filter(ticket=ticket, kind="stage_changed").count() == 4
    # final stage: the only step left is reopening
    with pytest.raises(ValidationFailed) as exc:
        do_transition(ticket=ticket, to_stage="refund", actor=li)
    assert exc.value.fields["stage"] == "Cannot go from Resolved to Refund: allowed next steps are Reopen."
    do_transition(ticket=ticket, to_stage="investigating", actor=li)
    ticket.refresh_from_db()
    assert ticket.status == "open" and ticket.solved_at is None


def test_waiting_on_customer_pauses_and_a_started_flow_for_an_old_ticket(flows):
    li = flows["agent_li"]
    ticket = do_create_ticket(actor=li, customer=factories.customer(), subject="Old one", type="question")
    with pytest.raises(ValidationFailed):
        do_start_flow(ticket=ticket, actor=li)  # questions have no flow
    do_update_ticket(ticket=ticket, actor=li, changes={"type": "complaint"})
    do_start_flow(ticket=ticket, actor=li)
    do_transition(ticket=ticket, to_stage="waiting_customer", actor=li)
    ticket.refresh_from_db()
    assert ticket.status == "pending" and ticket.paused_at is not None
    with pytest.raises(ValidationFailed) as exc:
        do_start_flow(ticket=ticket, actor=li)
    assert exc.value.fields == {"stage": "already in a flow"}


def test_a_stage_warns_once_at_80_percent_of_its_time(flows, seen, django_capture_on_commit_callbacks):
    from ecrm.service.flows.services import check_stage_warnings

    ticket = complaint(flows["agent_li"])
    state = TicketFlowState.objects.get(ticket=ticket)
    warn_at = state.entered_at + (state.due_at - state.entered_at) * 0.8
    assert check_stage_warnings(warn_at - dt.timedelta(seconds=1)) == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert check_stage_warnings(warn_at + dt.timedelta(seconds=1)) == 1
        assert check_stage_warnings(warn_at + dt.timedelta(seconds=2)) == 0
    warnings = [e for e in seen if e.name == "sla.warning"]
    assert len(warnings) == 1 and warnings[0].data["target"] == "stage:investigating"
    assert TicketActivity.objects.filter(ticket=ticket, kind="sla.stage.warning").count() == 1
    assert check_stage_warnings(state.due_at + dt.timedelta(seconds=1)) == 0  # due: the breach check's turn
    # the next stage warns again on its own clock
    do_transition(ticket=ticket, to_stage="warehouse_check", actor=flows["agent_li"], note="x")
    state = TicketFlowState.objects.get(ticket=ticket)
    assert not state.warned
    warn_at = state.entered_at + (state.due_at - state.entered_at) * 0.8
    assert check_stage_warnings(warn_at + dt.timedelta(seconds=1)) == 1


def test_a_stage_sla_breach_fires_once(flows, seen, django_capture_on_commit_callbacks):
    ticket = complaint(flows["agent_li"])
    state = TicketFlowState.objects.get(ticket=ticket)
    assert check_stage_sla(state.due_at - dt.timedelta(seconds=1)) == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert check_stage_sla(state.due_at + dt.timedelta(seconds=1)) == 1
        assert check_stage_sla(state.due_at + dt.timedelta(minutes=5)) == 0
    breaches = [e for e in seen if e.name == "sla.breached"]
    assert len(breaches) == 1 and breaches[0].data["target"] == "stage:investigating"
    assert TicketFlowState.objects.get(ticket=ticket).breached
    # a new stage has a fresh clock
    do_transition(ticket=ticket, to_stage="warehouse_check", actor=flows["agent_li"], note="x")
    assert not TicketFlowState.objects.get(ticket=ticket).breached
