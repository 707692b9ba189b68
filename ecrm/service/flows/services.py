"""Writes of ticket flows: save a flow (editor and import), put a new ticket in its flow's initial
stage, move a ticket along a transition, and mark stage SLA breaches. Every write checks
permissions, leaves an audit entry, and a stage change emits `ticket.stage_changed` after commit."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, models, transaction
from django.utils import timezone

from ecrm.core import events
from ecrm.core.audit import record_audit, snapshot
from ecrm.core.consumers import publish
from ecrm.core.exceptions import ValidationFailed
from ecrm.core.models import Team, User
from ecrm.core.permissions import check_perm

from ..models import DONE_STATUSES, Ticket, TicketActivity, TicketComment, TicketStatus
from ..sla.calendar import add_business_minutes
from ..sla.engine import apply_policy, calendar_for_team
from . import definition as defn
from .models import FlowStage, FlowTransition, TicketFlow, TicketFlowState, TicketFlowStep
from .policy import refusal

MAX_NOTE = 5000


# --- Saving a flow ----------------------------------------------------------------------------------


@dataclass
class SaveResult:
    flow: TicketFlow
    action: str  # "created" | "updated" | "unchanged"


def _destructive_errors(flow: TicketFlow, d: dict[str, Any]) -> dict[str, str]:
    """Edits that would strand tickets are refused (we do not keep old versions around): a stage
    that tickets are in cannot be removed, and a flow with tickets in it keeps its ticket type."""
    errors: dict[str, str] = {}
    keys = {s["key"] for s in d["stages"]}
    live = TicketFlowState.objects.filter(flow=flow, ticket__status__in=_open_statuses()).values_list(
        "stage__key", "stage__label"
    )
    counts: dict[tuple[str, str], int] = {}
    for key, label in live:
        counts[(key, label)] = counts.get((key, label), 0) + 1
    for (key, label), n in sorted(counts.items()):
        if key not in keys:
            errors["stages"] = (
                f"The stage “{label}” cannot be removed: {n} open ticket(s) are in it. "
                "Move them on first, or keep the stage."
            )
    if counts and d["ticket_type"] != flow.ticket_type:
        errors["ticket_type"] = "Open tickets are in this flow, so its ticket type cannot change."
    return errors


def _open_statuses() -> list[str]:
    return [s for s in TicketStatus.values if s not in DONE_STATUSES]


def save_flow(
    *, actor: Any, data: dict[str, Any], flow: TicketFlow | None = None, dry_run: bool = False
) -> SaveResult:
    """Create or update a flow from its definition (see definition.py); ValidationFailed with the
    errors by field path when it is not valid. With dry_run, validate only."""
    if isinstance(actor, User):
        check_perm(actor, "service.configure")
    d, errors = defn.validate(data, flow=flow)
    if flow is not None and not errors:
        errors.update(_destructive_errors(flow, d))
    if errors:
        raise ValidationFailed("The flow is not valid.", fields=errors)
    if flow is not None and defn.as_definition(flow) == d:
        return SaveResult(flow, "unchanged")
    if dry_run:
        return SaveResult(flow or TicketFlow(name=d["name"]), "updated" if flow else "created")
    now = timezone.now()
    with transaction.atomic():
        before = defn.as_definition(flow) if flow else None
        if flow is None:
            flow = TicketFlow(created_at=now, version=0)
        else:
            flow = TicketFlow.objects.select_for_update().get(pk=flow.pk)
        flow.name, flow.ticket_type, flow.description = d["name"], d["ticket_type"], d["description"]
        flow.is_active, flow.business_hours = d["active"], d["business_hours"]
        flow.version += 1
        flow.updated_at = now
        try:
            with transaction.atomic():
                flow.save()
        except IntegrityError:
            raise ValidationFailed(
                "Another flow is active for this ticket type.",
                fields={"ticket_type": "already has an active flow"},
            ) from None
        teams = {t.name: t for t in Team.objects.all()}
        existing = {s.key: s for s in flow.stages.all()}
        flow.transitions.all().delete()
        stages: dict[str, FlowStage] = {}
        for position, s in enumerate(d["stages"]):
            stage = existing.pop(s["key"], None) or FlowStage(flow=flow, key=s["key"])
            stage.label, stage.team = s["label"], teams.get(s["team"]) if s["team"] else None
            stage.sla_minutes, stage.status = s["sla_minutes"], s["status"]
            stage.is_initial, stage.is_final, stage.position = s["initial"], s["final"], position
            stage.save()
            stages[stage.key] = stage
        for gone in existing.values():  # no open ticket is in these (checked above)
            TicketFlowState.objects.filter(stage=gone).delete()
            gone.delete()
        for position, t in enumerate(d["transitions"]):
            tr = FlowTransition.objects.create(
                flow=flow, from_stage=stages[t["from"]], to_stage=stages[t["to"]], label=t["label"],
                roles=t["roles"], required_fields=t["requires"], position=position,
            )  # fmt: skip
            if t["teams"]:
                tr.teams.set([teams[n] for n in t["teams"]])
        record_audit(
            actor=actor, action="ticket_flow.create" if before is None else "ticket_flow.update", obj=flow,
            before=before, after=d if before is not None else {"definition": d},
        )  # fmt: skip
    return SaveResult(flow, "created" if before is None else "updated")


def do_save_flow(*, actor: User, data: dict[str, Any], flow: TicketFlow | None = None) -> TicketFlow:
    return save_flow(actor=actor, data=data, flow=flow).flow


# --- A ticket in its flow ---------------------------------------------------------------------------


def _stage_due(flow: TicketFlow, stage: FlowStage, start: dt.datetime) -> dt.datetime | None:
    if not stage.sla_minutes:
        return None
    if not flow.business_hours:
        return start + dt.timedelta(minutes=stage.sla_minutes)
    return add_business_minutes(start, stage.sla_minutes, calendar_for_team(stage.team_id))


def active_flow_for(ticket_type: str) -> TicketFlow | None:
    return TicketFlow.objects.filter(ticket_type=ticket_type, is_active=True).first()


@dataclass
class _Entry:
    """A ticket that entered its flow in the creating transaction; `emit` after ticket.created."""

    ticket: Ticket
    state: TicketFlowState
    actor: Any

    def emit(self) -> None:
        _emit_stage_changed(self.ticket, self.state, None, self.actor, note="")


def enter_initial_stage(ticket: Ticket, actor: Any, *, now: dt.datetime | None = None) -> _Entry | None:
    """Called by do_create_ticket inside its transaction, before the ticket's audit snapshot: a ticket
    of a type with an active flow takes the initial stage's team (keeping an assignee who belongs to
    it) and SLA. A new ticket stays New (nobody has worked it yet) unless the stage says otherwise."""
    flow = active_flow_for(ticket.type)
    if flow is None:
        return None
    stage = flow.stages.filter(is_initial=True).select_related("team").first()
    if stage is None:
        return None
    now = now or ticket.created_at
    updates: list[str] = []
    if stage.team_id and stage.team_id != ticket.team_id:
        ticket.team = stage.team
        updates.append("team")
        if ticket.assignee_id and not ticket.assignee.teams.filter(pk=stage.team_id).exists():
            ticket.assignee = None
            ticket.status = TicketStatus.NEW
            updates += ["assignee", "status"]
        apply_policy(ticket)  # the team's calendar sets the ticket SLA's due times
        updates += ["sla_policy", "first_response_due", "first_response_warn_at", "resolution_due",
                    "resolution_warn_at"]  # fmt: skip
    if stage.status and stage.status not in (TicketStatus.OPEN, ticket.status):
        ticket.status = stage.status
        updates.append("status")
    if updates:
        ticket.save(update_fields=sorted(set(updates)))
    state = TicketFlowState.objects.create(
        ticket=ticket, flow=flow, stage=stage, flow_version=flow.version, entered_at=now,
        due_at=_stage_due(flow, stage, now),
    )  # fmt: skip
    TicketFlowStep.objects.create(
        ticket=ticket, flow=flow, to_key=stage.key, to_label=stage.label, team=stage.team,
        actor=actor if isinstance(actor, User) else None, at=now,
    )  # fmt: skip
    TicketActivity.objects.create(
        ticket=ticket, at=now, actor=actor if isinstance(actor, User) else None, kind="stage_changed",
        data={"flow": flow.name, "changes": {"stage": [None, stage.label]}},
    )  # fmt: skip
    return _Entry(ticket, state, actor)


def do_start_flow(*, ticket: Ticket, actor: Any) -> TicketFlowState:
    """Put an existing ticket (created before its type had a flow, or whose type changed) in the
    active flow's initial stage."""
    from ..services.tickets import _check_staff, check_ticket_visible

    _check_staff(actor)
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update(of=("self",)).select_related("assignee").get(pk=ticket.pk)
        if isinstance(actor, User):
            check_ticket_visible(actor, ticket)
        if TicketFlowState.objects.filter(ticket=ticket).exists():
            raise ValidationFailed("This ticket is already in a flow.", fields={"stage": "already in a flow"})
        if ticket.status in DONE_STATUSES or ticket.merged_into_id:
            raise ValidationFailed(
                "Only an open ticket can start a flow.", fields={"stage": "ticket is done"}
            )
        entry = enter_initial_stage(ticket, actor, now=timezone.now())
        if entry is None:
            raise ValidationFailed(
                "No active flow for this ticket type.", fields={"stage": "no flow for this ticket type"}
            )
        record_audit(
            actor=actor, action="ticket.flow_start", obj=ticket, after={"stage": entry.state.stage.key}
        )
        entry.emit()
    return entry.state


def allowed_transitions(state: TicketFlowState) -> list[FlowTransition]:
    return list(
        FlowTransition.objects.filter(from_stage_id=state.stage_id)
        .select_related("to_stage", "to_stage__team", "from_stage")
        .prefetch_related("teams")
        .order_by("position", "id")
    )


def do_transition(
    *, ticket: Ticket, to_stage: str, actor: Any, note: str = "", fields: dict[str, Any] | None = None
) -> TicketFlowState:
    """Move `ticket` to the stage with key `to_stage`. Refused (ValidationFailed, field "stage") when
    the flow has no such step from the current stage, or the actor's role or team may not take it;
    a required note or ticket field missing is refused on that field. On success: the stage's team
    (the assignee is cleared when the team changes, so routing assigns someone there), the stage's
    status, the stage SLA, a history step, activity, audit, and `ticket.stage_changed`."""
    from ..services.tickets import (
        _check_staff,
        _status_side_effects,
        check_ticket_visible,
        clean_custom_fields,
    )

    _check_staff(actor)
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise ValidationFailed("The note is too long.", fields={"note": f"at most {MAX_NOTE} characters"})
    with transaction.atomic():
        ticket = (
            Ticket.objects.select_for_update(of=("self",))
            .select_related("sla_policy", "customer")
            .get(pk=ticket.pk)
        )
        if isinstance(actor, User):  # on the locked row: the caller's copy may predate a handoff
            check_ticket_visible(actor, ticket)
        state = (
            TicketFlowState.objects.select_for_update(of=("self",))
            .select_related("flow", "stage", "stage__team")
            .filter(ticket=ticket)
            .first()
        )
        if state is None:
            raise ValidationFailed("This ticket is not in a flow.", fields={"stage": "not in a flow"})
        if ticket.merged_into_id or ticket.status == TicketStatus.CLOSED:
            raise ValidationFailed(
                f"{ticket.reference} is closed; its stage cannot change.",
                fields={"stage": "ticket is closed"},
            )
        options = allowed_transitions(state)
        transition = next((t for t in options if t.to_stage.key == to_stage), None)
        if transition is None:
            target = FlowStage.objects.filter(flow=state.flow, key=to_stage).first()
            target_label = target.label if target else to_stage
            if options:
                allowed = ", ".join(t.label for t in options)
                message = (
                    f"Cannot go from {state.stage.label} to {target_label}: allowed next steps are {allowed}."
                )
            else:
                message = f"Cannot go from {state.stage.label} to {target_label}: {state.stage.label} has no next steps."
            raise ValidationFailed(message, code="transition_refused", fields={"stage": message})
        reason = refusal(transition, actor)
        if reason:
            message = f"Cannot go from {state.stage.label} to {transition.to_stage.label}: {reason}"
            raise ValidationFailed(message, code="transition_refused", fields={"stage": message})
        errors: dict[str, str] = {}
        if fields:
            ticket.custom_fields = {
                **ticket.custom_fields, **{k: v for k, v in clean_custom_fields(fields).items()}
            }  # fmt: skip
        for required in transition.required_fields:
            if required == defn.NOTE:
                if not note:
                    errors["note"] = f"The step “{transition.label}” needs a note."
            elif ticket.custom_fields.get(required) in (None, ""):
                errors[f"custom_fields.{required}"] = f"The step “{transition.label}” needs {required}."
        if errors:
            raise ValidationFailed(
                f"The step “{transition.label}” needs more information.",
                code="transition_incomplete",
                fields=errors,
            )
        now = timezone.now()
        stage, old_stage = transition.to_stage, state.stage
        before = snapshot(ticket)
        if stage.team_id and stage.team_id != ticket.team_id:
            ticket.team = stage.team
            ticket.assignee = None  # the next department's routing picks who works it
        old_status = ticket.status
        if stage.status and stage.status != ticket.status:
            ticket.status = stage.status
            _status_side_effects(ticket, old_status, now)
        if before["team_id"] != ticket.team_id:
            apply_policy(ticket)
        ticket.updated_at = now
        ticket.save()
        seconds = (now - state.entered_at).total_seconds()
        state.stage, state.entered_at, state.flow_version = stage, now, state.flow.version
        state.due_at, state.breached, state.warned = _stage_due(state.flow, stage, now), False, False
        state.save(update_fields=["stage", "entered_at", "flow_version", "due_at", "breached", "warned"])
        user = actor if isinstance(actor, User) else None
        TicketFlowStep.objects.create(
            ticket=ticket, flow=state.flow, from_key=old_stage.key, from_label=old_stage.label, to_key=stage.key,
            to_label=stage.label, team=stage.team, actor=user, note=note, at=now, seconds_in_stage=seconds,
        )  # fmt: skip
        if note:  # the next team reads the handoff note with the ticket's other internal notes
            TicketComment.objects.create(
                ticket=ticket, author=user, body=f"[{old_stage.label} → {stage.label}] {note}", is_public=False,
                created_at=now,
            )  # fmt: skip
        after = snapshot(ticket)
        changed = {k: [before[k], after[k]] for k in after if before[k] != after[k] and k != "updated_at"}
        TicketActivity.objects.create(
            ticket=ticket, at=now, actor=user, kind="stage_changed",
            data={"flow": state.flow.name, "changes": {"stage": [old_stage.label, stage.label], **events.plain(changed)}},
        )  # fmt: skip
        record_audit(
            actor=actor, action="ticket.stage_change", obj=ticket,
            before={**before, "stage": old_stage.key}, after={**after, "stage": stage.key},
        )  # fmt: skip
        if changed:
            events.emit("ticket.updated", subject_type="ticket", subject_id=ticket.pk,
                        data={"changes": events.plain(changed)}, actor=user)  # fmt: skip
            if "status" in changed:
                events.emit("ticket.status_changed", subject_type="ticket", subject_id=ticket.pk,
                            data={"changes": {"status": events.plain(changed["status"])}}, actor=user)  # fmt: skip
        _emit_stage_changed(ticket, state, old_stage, actor, note=note)
        if ticket.status == TicketStatus.SOLVED and old_status != TicketStatus.SOLVED:
            from ..services.surveys import schedule_csat

            schedule_csat(ticket)
    return state


def _emit_stage_changed(
    ticket: Ticket, state: TicketFlowState, old: FlowStage | None, actor: Any, *, note: str
) -> None:
    stage = state.stage
    events.emit(
        "ticket.stage_changed",
        subject_type="ticket",
        subject_id=ticket.pk,
        data={
            "machine": state.flow.name,
            "flow_id": state.flow_id,
            "changes": {"stage": [old.key if old else None, stage.key]},
            "labels": [old.label if old else None, stage.label],
            "team": stage.team_id,
            "team_name": stage.team.name if stage.team else None,
            "due_at": state.due_at.isoformat() if state.due_at else None,
            "final": stage.is_final,
            "note": note,
        },
        actor=actor if isinstance(actor, User) else None,
    )


# --- Stage SLA ---------------------------------------------------------------------------------------

BATCH = 500


WARN_SHARE = 0.8  # a stage warns when this share of its time (entered -> due, wall clock) has passed


def _stage_recipients(stage, ticket) -> list[int]:
    ids = set(
        User.objects.filter(is_active=True, role__in=["manager", "admin"], teams__id=stage.team_id)
        .values_list("id", flat=True)
    ) if stage.team_id else set()  # fmt: skip
    if ticket.assignee_id:
        ids.add(ticket.assignee_id)
    return sorted(ids)


def check_stage_warnings(now: dt.datetime | None = None) -> int:
    """Warn once per stage visit when WARN_SHARE of the stage's time has passed and it is not yet due:
    emits `sla.warning` with target "stage:<key>" (rules can notify the team) and tells the stage
    team's managers and the assignee live. Returns how many warned this run."""
    now = now or timezone.now()
    longest = FlowStage.objects.filter(sla_minutes__isnull=False).aggregate(m=models.Max("sla_minutes"))["m"]
    if not longest:
        return 0
    # only stages due within the longest stage's last (1 - WARN_SHARE) can be past their warning point
    horizon = now + dt.timedelta(minutes=longest * (1 - WARN_SHARE))
    candidates = (
        TicketFlowState.objects.filter(
            warned=False,
            breached=False,
            due_at__gt=now,
            due_at__lte=horizon,
            ticket__status__in=_open_statuses(),
        )
        .exclude(ticket__status=TicketStatus.PENDING)
        .select_related("stage", "ticket")
        .order_by("due_at", "id")[:BATCH]
    )
    fired = 0
    for state in candidates:
        if state.entered_at + (state.due_at - state.entered_at) * WARN_SHARE > now:
            continue
        with transaction.atomic():
            if not TicketFlowState.objects.filter(pk=state.pk, warned=False, stage_id=state.stage_id).update(
                warned=True
            ):
                continue  # a concurrent run warned first, or the ticket moved on
            stage, ticket = state.stage, state.ticket
            TicketActivity.objects.create(
                ticket=ticket, at=now, kind="sla.stage.warning",
                data={"stage": stage.key, "label": stage.label, "due": state.due_at.isoformat()},
            )  # fmt: skip
            events.emit(
                "sla.warning", subject_type="ticket", subject_id=ticket.pk,
                data={"target": f"stage:{stage.key}", "due_at": state.due_at.isoformat(), "team": stage.team_id},
            )  # fmt: skip
            payload = {"type": "ticket.sla.stage.warning", "ticket": ticket.pk, "number": ticket.reference,
                       "stage": stage.label, "due": state.due_at.isoformat()}  # fmt: skip
            recipients = _stage_recipients(stage, ticket)
            transaction.on_commit(lambda r=recipients, p=payload: [publish(f"user.{u}", p) for u in r])
            fired += 1
    return fired


def check_stage_sla(now: dt.datetime | None = None) -> int:
    """Mark the stages whose SLA passed as breached, once each (a conditional update is the guard, so
    concurrent runs fire each breach once); emits `sla.breached` with target "stage:<key>" and tells
    the stage team's managers live. Returns how many breached this run."""
    now = now or timezone.now()
    due = (
        TicketFlowState.objects.filter(breached=False, due_at__lte=now, ticket__status__in=_open_statuses())
        .exclude(ticket__status=TicketStatus.PENDING)  # waiting on the customer does not count against a team
        .select_related("stage", "ticket")
        .order_by("due_at", "id")[:BATCH]
    )
    fired = 0
    for state in due:
        with transaction.atomic():
            if not TicketFlowState.objects.filter(
                pk=state.pk, breached=False, stage_id=state.stage_id
            ).update(breached=True):
                continue
            stage, ticket = state.stage, state.ticket
            TicketActivity.objects.create(
                ticket=ticket, at=now, kind="sla.stage.breach",
                data={"stage": stage.key, "label": stage.label, "due": state.due_at.isoformat()},
            )  # fmt: skip
            record_audit(actor=None, action="ticket.stage_sla_breach", obj=ticket, after={"stage": stage.key})
            events.emit(
                "sla.breached", subject_type="ticket", subject_id=ticket.pk,
                data={"target": f"stage:{stage.key}", "due_at": state.due_at.isoformat(), "team": stage.team_id},
            )  # fmt: skip
            recipients = list(
                User.objects.filter(is_active=True, role__in=["manager", "admin"], teams__id=stage.team_id)
                .values_list("id", flat=True)
            ) if stage.team_id else []  # fmt: skip
            payload = {"type": "ticket.sla.stage.breach", "ticket": ticket.pk, "number": ticket.reference,
                       "stage": stage.label}  # fmt: skip
            transaction.on_commit(lambda r=recipients, p=payload: [publish(f"user.{u}", p) for u in r])
            fired += 1
    return fired
