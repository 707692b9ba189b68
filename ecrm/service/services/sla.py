"""The periodic SLA check: warnings before breach, and escalation on breach. Idempotent — each
warning and breach of a ticket is a `TicketActivity` with a unique key, so it fires exactly once
however often (or concurrently) the check runs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from ecrm.core import events
from ecrm.core.audit import record_audit
from ecrm.core.consumers import publish
from ecrm.core.models import Role, User

from ..models import OPEN_STATUSES, PRIORITY_ORDER, Ticket, TicketActivity
from ..sla.engine import PAUSED_STATUSES

BATCH = 500


def _recipients(ticket: Ticket) -> list[int]:
    """The assignee and the team's managers (all managers when the ticket has no team)."""
    managers = User.objects.filter(is_active=True, role__in=[Role.MANAGER, Role.ADMIN])
    managers = (
        managers.filter(teams__id=ticket.team_id) if ticket.team_id else managers.filter(role=Role.MANAGER)
    )
    ids = set(managers.values_list("id", flat=True))
    if ticket.assignee_id:
        ids.add(ticket.assignee_id)
    return sorted(ids)


def _fire(ticket: Ticket, target: str, stage: str, now: dt.datetime) -> bool:
    """Record `sla.<target>.<stage>` once; on a breach, escalate. False if it had fired already."""
    key = f"sla.{target}.{stage}"
    try:
        with transaction.atomic():
            due = ticket.first_response_due if target == "first_response" else ticket.resolution_due
            TicketActivity.objects.create(
                ticket=ticket, at=now, kind=key, key=key, data={"due": due.isoformat() if due else None}
            )
            payload: dict[str, Any] = {
                "type": f"ticket.{key}", "ticket": ticket.pk, "number": ticket.reference, "subject": ticket.subject,
            }  # fmt: skip
            if stage == "breach":
                updates = {f"{target}_breached": True}
                index = PRIORITY_ORDER.index(ticket.priority)
                if index < len(PRIORITY_ORDER) - 1:
                    # escalation raises the priority one step; the targets already running stay as they are
                    updates["priority"] = PRIORITY_ORDER[index + 1]
                    payload["priority"] = updates["priority"]
                Ticket.objects.filter(pk=ticket.pk).update(**updates)
                record_audit(
                    actor=None, action="ticket.sla_breach", obj=ticket,
                    before={"priority": ticket.priority}, after={"priority": updates.get("priority", ticket.priority),
                                                               "breached": target},
                )  # fmt: skip
            recipients = _recipients(ticket)
            transaction.on_commit(lambda: [publish(f"user.{uid}", payload) for uid in recipients])
            events.emit(
                "sla.breached" if stage == "breach" else "sla.warning",
                subject_type="ticket",
                subject_id=ticket.pk,
                data={"target": target, "due_at": due.isoformat() if due else None},
            )
    except IntegrityError:
        return False  # fired before (or by a concurrent run)
    return True


def check_sla(now: dt.datetime | None = None) -> dict[str, int]:
    """Fire due warnings and breaches; returns how many of each fired this run."""
    now = now or timezone.now()
    fired = {
        "first_response.warning": 0,
        "first_response.breach": 0,
        "resolution.warning": 0,
        "resolution.breach": 0,
    }

    def warned(key: str):
        return Exists(TicketActivity.objects.filter(ticket=OuterRef("pk"), key=key))

    live = Ticket.objects.filter(status__in=OPEN_STATUSES, merged_into__isnull=True)
    first = live.filter(first_response_at__isnull=True, first_response_breached=False)
    resolution = live.exclude(status__in=PAUSED_STATUSES).filter(
        paused_at__isnull=True, resolution_breached=False
    )
    plans = [
        ("first_response", "breach", first.filter(first_response_due__lte=now)),
        ("first_response", "warning", first.filter(first_response_warn_at__lte=now).exclude(
            warned("sla.first_response.warning"))),
        ("resolution", "breach", resolution.filter(resolution_due__lte=now)),
        ("resolution", "warning", resolution.filter(resolution_warn_at__lte=now).exclude(
            warned("sla.resolution.warning"))),
    ]  # fmt: skip
    for target, stage, qs in plans:
        for ticket in qs.order_by("id")[:BATCH]:
            if (
                stage == "breach"
                and not TicketActivity.objects.filter(ticket=ticket, key=f"sla.{target}.warning").exists()
            ):
                # a breach found without its warning (the check was down): record the warning too
                if _fire(ticket, target, "warning", now):
                    fired[f"{target}.warning"] += 1
            if _fire(ticket, target, stage, now):
                fired[f"{target}.{stage}"] += 1
    return fired
