"""Reads of routing: the live dashboard, agents with their load, queues with waiting counts, and an
object's assignment history (shown on the conversation and ticket pages)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from django.db.models import Count, Min, Q
from django.utils import timezone

from ecrm.core.exceptions import NotFound
from ecrm.core.models import Role, User
from ecrm.core.permissions import check_perm

from .models import CAPACITY_CHANNELS, AgentProfile, Assignment, Presence, Queue, WorkItem, WorkStatus

SLA_RISK = dt.timedelta(minutes=10)  # "near breach" on the dashboard
AGENT_ROLES = (Role.AGENT, Role.MANAGER)


def routing_agents(user: Any) -> list[User]:
    """People who can take work (agents and managers), with their routing profile if they have one."""
    check_perm(user, "routing.view")
    return list(
        User.objects.filter(is_active=True, role__in=AGENT_ROLES)
        .select_related("routing_profile")
        .prefetch_related("teams")
        .order_by("first_name", "last_name", "username")
    )


def access_agent_for_user(user: Any, agent_id: int) -> User:
    check_perm(user, "routing.view")
    agent = User.objects.filter(pk=agent_id, is_active=True, role__in=(*AGENT_ROLES, Role.ADMIN)).first()
    if agent is None:
        raise NotFound("No such agent.")
    return agent


def loads_by_agent() -> dict[int, dict[str, int]]:
    loads: dict[int, dict[str, int]] = defaultdict(dict)
    for row in (
        Assignment.objects.filter(ended_at__isnull=True).values("agent_id", "channel").annotate(n=Count("id"))
    ):
        loads[row["agent_id"]][row["channel"]] = row["n"]
    return loads


def agent_rows(user: Any) -> list[dict[str, Any]]:
    """Each agent's presence and load against capacity per channel (the dashboard's agent table)."""
    loads = loads_by_agent()
    rows = []
    for agent in routing_agents(user):
        profile = getattr(agent, "routing_profile", None)
        capacity = (profile.capacity if profile else {}) or {}
        load = loads.get(agent.pk, {})
        channels = [
            {"channel": c, "load": load.get(c, 0), "capacity": int(capacity.get(c, 0))}
            for c in CAPACITY_CHANNELS
            if capacity.get(c) or load.get(c)
        ]
        used = sum(x["load"] for x in channels)
        total = sum(x["capacity"] for x in channels)
        rows.append({
            "agent": agent,
            "profile": profile,
            "presence": profile.presence if profile else Presence.OFFLINE,
            "channels": channels,
            "occupancy": round(100 * used / total) if total else 0,
            "skills": sorted((profile.skills or {}).items()) if profile else [],
        })  # fmt: skip
    order = {Presence.ONLINE: 0, Presence.AWAY: 1, Presence.OFFLINE: 2}
    return sorted(rows, key=lambda r: order.get(r["presence"], 3))


def queue_rows(user: Any, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    check_perm(user, "routing.view")
    return queue_stats(now)


def queue_stats(now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Each queue (and "no queue") with its waiting count, oldest wait and items near or over breach.
    No permission check: for callers that authorised already (an API key)."""
    now = now or timezone.now()
    waiting = WorkItem.objects.filter(status=WorkStatus.WAITING, enqueued_at__lte=now)
    stats = {
        row["queue_id"]: row
        for row in waiting.values("queue_id").annotate(
            n=Count("id"),
            oldest=Min("enqueued_at"),
            at_risk=Count("id", filter=Q(sla_due_at__lte=now + SLA_RISK, sla_due_at__gt=now)),
            breached=Count("id", filter=Q(sla_due_at__lte=now)),
        )
    }
    assigned = dict(
        WorkItem.objects.filter(status=WorkStatus.ASSIGNED).values_list("queue_id").annotate(n=Count("id"))
    )
    rows = []
    queues: list[Queue | None] = [*Queue.objects.select_related("team").order_by("-priority", "name"), None]
    for queue in queues:
        key = queue.pk if queue else None
        s = stats.get(key, {})
        if queue is None and not s and not assigned.get(None):
            continue
        oldest = s.get("oldest")
        rows.append({
            "queue": queue,
            "waiting": s.get("n", 0),
            "assigned": assigned.get(key, 0),
            "oldest_minutes": int((now - oldest).total_seconds() // 60) if oldest else None,
            "at_risk": s.get("at_risk", 0),
            "breached": s.get("breached", 0),
        })  # fmt: skip
    return rows


def waiting_items(user: Any, *, limit: int = 50, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """The waiting items, most urgent first (breach time, then age), with their age and SLA minutes."""
    check_perm(user, "routing.view")
    now = now or timezone.now()
    items = (
        WorkItem.objects.filter(status=WorkStatus.WAITING)
        .select_related("queue")
        .order_by("sla_due_at", "enqueued_at", "id")[:limit]
    )
    out = []
    for item in items:
        sla = int((item.sla_due_at - now).total_seconds() // 60) if item.sla_due_at else None
        out.append({
            "item": item,
            "age_minutes": max(0, int((now - item.enqueued_at).total_seconds() // 60)),
            "scheduled": item.enqueued_at > now,
            "sla_minutes": sla,
            "risk": "breached" if sla is not None and sla < 0 else ("near" if sla is not None and sla <= 10 else ""),
        })  # fmt: skip
    return out


def dashboard(user: Any) -> dict[str, Any]:
    from .services import get_settings

    check_perm(user, "routing.view")
    now = timezone.now()
    agents = agent_rows(user)
    return {
        "now": now,
        "queues": queue_rows(user, now),
        "items": waiting_items(user, now=now),
        "agents": agents,
        "presence_counts": {p: sum(1 for a in agents if a["presence"] == p) for p in Presence.values},
        "settings": get_settings(),
    }


def assignments_of(kind: str, object_id: int) -> list[Assignment]:
    """An object's assignments, newest first (the explanation panel). The caller has already checked
    that the user may see the object."""
    return list(
        Assignment.objects.filter(work_item__kind=kind, work_item__object_id=object_id)
        .select_related("agent")
        .order_by("-assigned_at", "-id")[:10]
    )


def work_items_for_api(*, status: str | None, queue_id: int | None, limit: int, offset: int):
    qs = WorkItem.objects.select_related("queue").order_by("-enqueued_at", "-id")
    if status:
        qs = qs.filter(status=status)
    if queue_id:
        qs = qs.filter(queue_id=queue_id)
    return qs.count(), list(qs[offset : offset + limit])


def agent_profiles_for_api() -> list[User]:
    return list(
        User.objects.filter(is_active=True, role__in=AGENT_ROLES)
        .select_related("routing_profile")
        .order_by("id")
    )


def my_presence(user: Any) -> str:
    profile = (
        AgentProfile.objects.filter(user_id=getattr(user, "pk", None))
        .values_list("presence", flat=True)
        .first()
    )
    return profile or Presence.OFFLINE
