"""Reads of ticket flows, with the caller's permissions applied."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Prefetch, Q

from ecrm.core.exceptions import NotFound
from ecrm.core.models import User
from ecrm.core.permissions import check_perm, has_perm

from ..models import DONE_STATUSES, Ticket
from .models import FlowStage, FlowTransition, TicketFlow, TicketFlowState, TicketFlowStep
from .policy import refusal


def flows_for_user(user: Any) -> list[TicketFlow]:
    """Every flow with its stages and how many open tickets are in it."""
    check_perm(user, "service.view")
    return list(
        TicketFlow.objects.annotate(
            open_tickets=Count("states", filter=~Q(states__ticket__status__in=DONE_STATUSES))
        )
        .prefetch_related(Prefetch("stages", queryset=FlowStage.objects.select_related("team")))
        .order_by("name")
    )


def access_flow_for_user(user: Any, flow_id: int, capability: str = "service.view") -> TicketFlow:
    check_perm(user, capability)
    flow = TicketFlow.objects.filter(pk=flow_id).first()
    if flow is None:
        raise NotFound("No such flow.")
    return flow


def flow_graph(flow: TicketFlow) -> list[dict[str, Any]]:
    """Stages in order, each with its outgoing steps (the read-only diagram)."""
    stages = list(flow.stages.select_related("team").order_by("position", "id"))
    outgoing: dict[int, list[FlowTransition]] = {s.pk: [] for s in stages}
    for t in flow.transitions.select_related("to_stage").prefetch_related("teams").order_by("position", "id"):
        outgoing[t.from_stage_id].append(t)
    return [{"stage": s, "steps": outgoing[s.pk]} for s in stages]


def ticket_flow_view(ticket: Ticket, user: Any) -> dict[str, Any] | None:
    """The ticket's stage, the steps from it (each with why this user may not take it, if so) and its
    history; or, for a ticket outside any flow whose type has one, the flow it could start."""
    state = (
        TicketFlowState.objects.select_related("flow", "stage", "stage__team").filter(ticket=ticket).first()
    )
    if state is None:
        from .services import active_flow_for

        flow = active_flow_for(ticket.type)
        if flow is None or ticket.status in DONE_STATUSES:
            return None
        return {"state": None, "startable": flow, "steps": [], "history": []}
    team_ids = set(user.teams.values_list("id", flat=True)) if isinstance(user, User) else set()
    steps = []
    for t in (
        FlowTransition.objects.filter(from_stage_id=state.stage_id)
        .select_related("to_stage", "to_stage__team")
        .prefetch_related("teams")
        .order_by("position", "id")
    ):
        steps.append({"transition": t, "refusal": refusal(t, user, team_ids) if has_perm(user, "service.edit") else "",
                      "needs_note": "note" in t.required_fields,
                      "fields": [f for f in t.required_fields if f != "note"]})  # fmt: skip
    history = list(
        TicketFlowStep.objects.filter(ticket=ticket).select_related("actor", "team").order_by("at", "id")
    )
    return {"state": state, "startable": None, "steps": steps, "history": history}
