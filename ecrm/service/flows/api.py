"""REST endpoints of ticket flows (mounted in the service router, under /api/v1/service): the flows,
a ticket's stage with the steps it can take, and taking a step (422 with field errors when refused)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema
from pydantic import ConfigDict, Field

from ecrm.core.api_auth import actor_of
from ecrm.core.exceptions import PermissionDenied
from ecrm.core.models import ApiKey, User
from ecrm.core.permissions import check_perm

from .. import selectors as ticket_selectors
from .definition import as_definition
from .models import TicketFlow
from .selectors import ticket_flow_view
from .services import do_start_flow, do_transition
from .yaml import export_machines

router = Router(tags=["ticket flows"])


class StageOut(Schema):
    key: str
    label: str
    team: str | None
    sla_minutes: int | None
    status: str
    initial: bool
    final: bool


class TransitionOut(Schema):
    model_config = ConfigDict(populate_by_name=True)
    from_: str = Field(alias="from")
    to: str
    label: str
    roles: list[str]
    teams: list[str]
    requires: list[str]


class FlowOut(Schema):
    id: int
    name: str
    ticket_type: str
    description: str
    active: bool
    business_hours: bool
    version: int
    stages: list[StageOut]
    transitions: list[TransitionOut]


class StepOut(Schema):
    to: str
    label: str
    team: str | None
    allowed: bool
    refusal: str | None
    requires: list[str]


class HistoryOut(Schema):
    model_config = ConfigDict(populate_by_name=True)
    from_: str = Field(alias="from")
    to: str
    actor_id: int | None
    note: str
    at: dt.datetime
    seconds_in_stage: float | None


class TicketStageOut(Schema):
    ticket_id: int
    flow: str | None
    flow_version: int | None
    stage: str | None
    stage_label: str | None
    team: str | None
    entered_at: dt.datetime | None
    due_at: dt.datetime | None
    breached: bool
    next_steps: list[StepOut]
    history: list[HistoryOut]


class TransitionIn(Schema):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    to: str = Field(min_length=1, max_length=40, description="the key of the stage to move to")
    note: str = Field("", max_length=5000)
    fields: dict[str, Any] = Field(default_factory=dict, description="ticket custom fields the step requires")


def _require_write(request: HttpRequest) -> None:
    principal = request.auth
    if isinstance(principal, ApiKey):
        if not principal.allows_write():
            raise PermissionDenied("This API key is read-only.", code="read_only_key")
        return
    check_perm(principal, "service.edit")


def _flow_out(flow: TicketFlow) -> dict:
    return {"id": flow.pk, "version": flow.version, **as_definition(flow)}


@router.get(
    "/flows", response=list[FlowOut], by_alias=True, summary="Ticket flows (state machines per ticket type)"
)
def list_flows(request: HttpRequest):
    if isinstance(request.auth, User):
        check_perm(request.auth, "service.view")
    return [_flow_out(f) for f in TicketFlow.objects.order_by("name")]


@router.get("/flows/export", summary="Every flow as data (the YAML export's content)")
def export_flows(request: HttpRequest):
    if isinstance(request.auth, User):
        check_perm(request.auth, "service.configure")
    return export_machines()


def _stage_out(ticket, user) -> dict:
    view = ticket_flow_view(ticket, user) or {"state": None, "steps": [], "history": []}
    state = view["state"]
    return {
        "ticket_id": ticket.pk,
        "flow": state.flow.name if state else None,
        "flow_version": state.flow_version if state else None,
        "stage": state.stage.key if state else None,
        "stage_label": state.stage.label if state else None,
        "team": state.stage.team.name if state and state.stage.team else None,
        "entered_at": state.entered_at if state else None,
        "due_at": state.due_at if state else None,
        "breached": bool(state and state.breached),
        "next_steps": [
            {
                "to": s["transition"].to_stage.key,
                "label": s["transition"].label,
                "team": s["transition"].to_stage.team.name if s["transition"].to_stage.team else None,
                "allowed": not s["refusal"],
                "refusal": s["refusal"] or None,
                "requires": list(s["transition"].required_fields),
            }  # fmt: skip
            for s in view["steps"]
        ],
        "history": [
            {
                "from": h.from_key,
                "to": h.to_key,
                "actor_id": h.actor_id,
                "note": h.note,
                "at": h.at,
                "seconds_in_stage": h.seconds_in_stage,
            }  # fmt: skip
            for h in view["history"]
        ],
    }


@router.get(
    "/tickets/{int:ticket_id}/stage",
    response=TicketStageOut,
    by_alias=True,
    summary="A ticket's stage and next steps",
)
def ticket_stage(request: HttpRequest, ticket_id: int):
    ticket = ticket_selectors.access_ticket_for_user(request.auth, ticket_id)
    return _stage_out(ticket, request.auth)


@router.post(
    "/tickets/{int:ticket_id}/stage",
    response=TicketStageOut,
    by_alias=True,
    summary="Move a ticket to another stage (422 with the allowed steps when refused)",
)
def move_ticket(request: HttpRequest, ticket_id: int, payload: TransitionIn):
    _require_write(request)
    ticket = ticket_selectors.access_ticket_for_user(request.auth, ticket_id)
    do_transition(ticket=ticket, to_stage=payload.to, actor=actor_of(request), note=payload.note,
                  fields=payload.fields or None)  # fmt: skip
    return _stage_out(ticket, request.auth)


@router.post(
    "/tickets/{int:ticket_id}/stage/start",
    response=TicketStageOut,
    by_alias=True,
    summary="Put a ticket in its flow",
)
def start_ticket_flow(request: HttpRequest, ticket_id: int):
    _require_write(request)
    ticket = ticket_selectors.access_ticket_for_user(request.auth, ticket_id)
    do_start_flow(ticket=ticket, actor=actor_of(request))
    return _stage_out(ticket, request.auth)
