"""REST API of routing (mounted at /api/v1/routing): queues with waiting counts, work items, agents'
presence and load (read with any read or write key, or a console session with routing.view), and
setting an agent's presence (a write key, e.g. the phone system or a workforce tool; or a console
user for themselves)."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Query, Router

from ecrm.core.exceptions import NotFound, PermissionDenied
from ecrm.core.models import ApiKey, ApiKeyScope, User
from ecrm.core.permissions import check_perm

from . import selectors
from .models import AgentProfile, Assignment, Presence
from .schemas import AgentOut, PresenceIn, PresenceOut, QueueOut, WorkItemPageOut, WorkItemQuery
from .services import do_set_presence

router = Router(tags=["routing"])


def _require_read(request: HttpRequest) -> None:
    principal = request.auth
    if isinstance(principal, ApiKey):
        if principal.scope == ApiKeyScope.TRACK:
            raise PermissionDenied("This API key may only send tracking events.", code="track_only_key")
        return
    check_perm(principal, "routing.view")


@router.get(
    "/queues", response=list[QueueOut], summary="Queues with waiting and assigned counts and SLA risk"
)
def list_queues(request: HttpRequest):
    _require_read(request)
    out = []
    for r in selectors.queue_stats():
        q = r["queue"]
        out.append({
            "id": q.pk if q else None, "name": q.name if q else "", "priority": q.priority if q else 0,
            "team_id": q.team_id if q else None, "channels": q.channels if q else [],
            "required_skills": q.required_skills if q else {}, "sla_minutes": q.sla_minutes if q else None,
            "waiting": r["waiting"], "assigned": r["assigned"], "oldest_wait_minutes": r["oldest_minutes"],
            "near_breach": r["at_risk"], "breached": r["breached"],
        })  # fmt: skip
    return out


@router.get(
    "/items", response=WorkItemPageOut, summary="Work items (newest first), with the current assignment"
)
def list_items(request: HttpRequest, query: Query[WorkItemQuery]):
    _require_read(request)
    count, items = selectors.work_items_for_api(
        status=query.status, queue_id=query.queue, limit=query.limit, offset=query.offset
    )
    active = {
        a.work_item_id: a
        for a in Assignment.objects.filter(work_item__in=[i.pk for i in items], ended_at__isnull=True)
    }
    rows = []
    for item in items:
        a = active.get(item.pk)
        rows.append({
            "id": item.pk, "kind": item.kind, "object_id": item.object_id, "status": item.status,
            "channel": item.channel, "queue_id": item.queue_id, "team_id": item.team_id, "skills": item.skills,
            "preferred": item.preferred, "priority": item.priority, "value": item.value,
            "enqueued_at": item.enqueued_at, "sla_due_at": item.sla_due_at, "requeue_count": item.requeue_count,
            "assignment": None if a is None else {
                "agent_id": a.agent_id, "policy": a.policy, "score": a.score, "reasons": a.reasons,
                "factors": a.factors, "assigned_at": a.assigned_at,
            },
        })  # fmt: skip
    return {"count": count, "items": rows}


@router.get("/agents", response=list[AgentOut], summary="Agents' presence, skills, capacity and current load")
def list_agents(request: HttpRequest):
    _require_read(request)
    loads = selectors.loads_by_agent()
    out = []
    for user in selectors.agent_profiles_for_api():
        p = getattr(user, "routing_profile", None)
        out.append({
            "id": user.pk, "username": user.username, "name": user.get_full_name() or user.username,
            "presence": p.presence if p else Presence.OFFLINE,
            "presence_changed_at": p.presence_changed_at if p else None,
            "last_activity_at": p.last_activity_at if p else None, "routable": p.routable if p else False,
            "skills": p.skills if p else {}, "capacity": p.capacity if p else {}, "load": loads.get(user.pk, {}),
        })  # fmt: skip
    return out


def _agent(user_id: int) -> User:
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        raise NotFound("No such agent.")
    return user


@router.get("/agents/{int:user_id}/presence", response=PresenceOut, summary="One agent's presence")
def get_presence(request: HttpRequest, user_id: int):
    if not (isinstance(request.auth, User) and request.auth.pk == user_id):
        _require_read(request)
    user = _agent(user_id)
    p = AgentProfile.objects.filter(user=user).first()
    return {"user_id": user.pk, "presence": p.presence if p else Presence.OFFLINE,
            "changed_at": p.presence_changed_at if p else None}  # fmt: skip


@router.post(
    "/agents/{int:user_id}/presence",
    response=PresenceOut,
    summary="Set an agent's presence (write key; or yourself). Offline hands back unanswered work.",
)
def set_presence(request: HttpRequest, user_id: int, payload: PresenceIn):
    user = _agent(user_id)
    profile = do_set_presence(actor=request.auth, user=user, presence=payload.presence)
    return {"user_id": user.pk, "presence": profile.presence, "changed_at": profile.presence_changed_at}
