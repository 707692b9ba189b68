"""The batch solve and failover.

`route_once` takes the routing lock (one solver at a time across every worker: a PostgreSQL
advisory lock, or SQLite's write lock taken up front), loads the waiting items and the online
agents with their current load, asks the engine for decisions, and applies each one through the
owning app's service (conversations.do_assign, tickets.do_update_ticket), storing the assignment and
its explanation. A partial unique index allows one active assignment per item, so even a bug in the
locking could not assign an item twice.

Failover: an agent going offline (or idle for too long) hands back what they have not answered yet;
an assignment with no reply from the agent within the timeout goes back to the queue and the next
solve gives it to someone else.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from ecrm.conversations.models import CallbackRequest, CallbackStatus, Conversation, ConversationStatus
from ecrm.core.consumers import publish
from ecrm.core.exceptions import EcrmError
from ecrm.core.models import Role, User
from ecrm.service.models import DONE_STATUSES, Ticket

from ..models import (
    AgentProfile,
    Assignment,
    EndReason,
    Presence,
    RoutingSettings,
    WorkItem,
    WorkKind,
    WorkStatus,
)
from .profiles import DASHBOARD_GROUP
from .settings import get_settings

logger = logging.getLogger(__name__)

LOCK_KEY = 0x5E0C_0001  # pg_advisory_xact_lock key of the routing solve
BATCH_LIMIT = 2000  # waiting items considered per solve (oldest/highest priority first)
ROUTABLE_ROLES = (Role.AGENT, Role.MANAGER, Role.ADMIN)


@dataclass
class RouteResult:
    assigned: int = 0
    waiting: int = 0
    agents: int = 0
    skipped: int = 0  # decisions the owning service refused (e.g. the agent left the team)
    ms: float = 0.0
    assignments: list[int] = field(default_factory=list)


def _lock(now: dt.datetime) -> RoutingSettings:
    """Serialise solvers. Call inside transaction.atomic(); released at commit."""
    get_settings()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
    else:
        # SQLite: write first, so this transaction holds the database's write lock from the start
        # (a deferred transaction that reads first could not upgrade once another one wrote).
        RoutingSettings.objects.filter(pk=1).update(last_solve_at=now)
    return RoutingSettings.objects.select_for_update().get(pk=1)


def _weights(settings: RoutingSettings):
    from ..engine import Weights

    return Weights(**settings.weights_dict())


def current_loads(agent_ids: list[int] | None = None) -> dict[int, dict[str, int]]:
    qs = Assignment.objects.filter(ended_at__isnull=True)
    if agent_ids is not None:
        qs = qs.filter(agent_id__in=agent_ids)
    loads: dict[int, dict[str, int]] = defaultdict(dict)
    for row in qs.values("agent_id", "channel").annotate(n=Count("id")):
        loads[row["agent_id"]][row["channel"]] = row["n"]
    return loads


def _agent_specs(items: list[WorkItem]) -> tuple[list[Any], dict[int, User], dict[int, AgentProfile]]:
    from ..engine import AgentSpec

    profiles = list(
        AgentProfile.objects.filter(
            presence=Presence.ONLINE, routable=True, user__is_active=True, user__role__in=ROUTABLE_ROLES
        )
        .select_related("user")
        .prefetch_related("user__teams")
        .order_by("user_id")
    )
    loads = current_loads([p.user_id for p in profiles])
    all_teams = {i.team_id for i in items if i.team_id}
    specs, users, by_id = [], {}, {}
    for p in profiles:
        user = p.user
        skills = {k: int(v) for k, v in (p.skills or {}).items()}
        # team membership is a required "skill": conversations.do_assign refuses anyone else
        teams = all_teams if user.role in (Role.ADMIN, Role.MANAGER) or user.is_superuser else {
            t.pk for t in user.teams.all()
        }  # fmt: skip
        for team_id in teams:
            skills[f"team:{team_id}"] = 5
        specs.append(
            AgentSpec(
                id=user.pk,
                skills=skills,
                capacity={k: int(v) for k, v in (p.capacity or {}).items()},
                load=dict(loads.get(user.pk, {})),
                name=user.get_full_name() or user.username,
            )  # fmt: skip
        )
        users[user.pk] = user
        by_id[user.pk] = p
    return specs, users, by_id


def _item_spec(item: WorkItem, now: dt.datetime):
    from ..engine import ItemSpec

    skills = dict(item.skills or {})
    if item.team_id:
        skills[f"team:{item.team_id}"] = 1
    return ItemSpec(
        id=item.pk,
        channel=item.channel,
        skills=skills,
        preferred=dict(item.preferred or {}),
        priority=item.priority,
        sla_seconds_left=(item.sla_due_at - now).total_seconds() if item.sla_due_at else None,
        value=item.value,
        waited_seconds=max(0.0, (now - item.enqueued_at).total_seconds()),
        last_agent_id=item.last_agent_id,
    )


def _solve_with_exclusions(items, item_rows, agents, weights, policy, state):
    """The engine has no per-item exclusion, so items that must skip someone (no reply from them)
    are solved first, per exclusion set, without those agents; then the rest with everyone."""
    from dataclasses import replace

    from ..engine import solve

    groups: dict[frozenset, list] = defaultdict(list)
    for spec in items:
        groups[frozenset(item_rows[spec.id].excluded_agents or ())].append(spec)
    order = sorted(groups, key=lambda k: -len(k))  # non-empty exclusion sets first; the empty one last
    agents = list(agents)
    out = []
    for excluded in order:
        pool = [a for a in agents if a.id not in excluded]
        decisions = solve(groups[excluded], pool, weights, policy, state)
        out.extend(decisions)
        if len(order) > 1 and decisions:
            extra: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
            channel_of = {s.id: s.channel for s in groups[excluded]}
            for d in decisions:
                extra[d.agent_id][channel_of[d.item_id]] += 1
            agents = [
                replace(a, load={**a.load, **{c: a.load.get(c, 0) + n for c, n in extra[a.id].items()}})
                if a.id in extra else a
                for a in agents
            ]  # fmt: skip
    return out


def route_once(*, now: dt.datetime | None = None) -> RouteResult:
    """One batch: give waiting items to online agents under the configured policy."""
    now = now or timezone.now()
    # The solver's imports (numpy, scipy: about 0.3 s cold) before the lock, not under it: on SQLite
    # the lock is the database's write lock, and the first solve after a start held it that long
    # while every chat message waited (bench/cc_chat.py).
    from .. import engine  # noqa: F401

    started = time.perf_counter()
    result = RouteResult()
    with transaction.atomic():
        settings = _lock(now)
        if not settings.enabled:
            return result
        rows = list(
            WorkItem.objects.filter(status=WorkStatus.WAITING, enqueued_at__lte=now).order_by(
                "-priority", "enqueued_at", "id"
            )[:BATCH_LIMIT]
        )
        result.waiting = len(rows)
        if not rows:
            _finish(settings, now, started, result)
            return result
        agents, users, _profiles = _agent_specs(rows)
        result.agents = len(agents)
        if not agents:
            _finish(settings, now, started, result)
            return result
        item_rows = {r.pk: r for r in rows}
        specs = [_item_spec(r, now) for r in rows]
        spec_of = {s.id: s for s in specs}
        agent_of = {a.id: a for a in agents}
        state = dict(settings.state or {})
        decisions = _solve_with_exclusions(
            specs, item_rows, agents, _weights(settings), settings.policy, state
        )
        given: dict[tuple[int, str], int] = defaultdict(int)  # load added in this batch, for the explanation
        for decision in sorted(decisions, key=lambda d: (d.agent_id, -d.score)):
            item = item_rows[decision.item_id]
            agent = users[decision.agent_id]
            spec = agent_of[decision.agent_id]
            load_before = _engine_slot(decision)
            if load_before is None:
                load_before = spec.load.get(item.channel, 0) + given[(agent.pk, item.channel)]
            details = _details(item, spec_of[item.pk], spec, load_before, now)
            assignment = _apply(item, agent, decision, details, now)
            if assignment is None:
                result.skipped += 1
                continue
            given[(agent.pk, item.channel)] += 1
            result.assigned += 1
            result.assignments.append(assignment.pk)
        settings.state = state
        _finish(settings, now, started, result)
    return result


def _finish(settings: RoutingSettings, now: dt.datetime, started: float, result: RouteResult) -> None:
    result.ms = (time.perf_counter() - started) * 1000
    settings.last_solve_at = now
    settings.last_solve_ms = round(result.ms, 2)
    settings.save(update_fields=["state", "last_solve_at", "last_solve_ms", "updated_at"])
    if result.assigned:
        payload = {"type": "routing.solved", "assigned": result.assigned, "waiting": result.waiting}
        transaction.on_commit(lambda: publish(DASHBOARD_GROUP, payload))


SLOT_REASON = re.compile(r"^(\d+) of (\d+) ")


def _engine_slot(decision) -> int | None:
    """The agent's load before this item as the engine counted it (which capacity slot it filled;
    its reason reads "3 of 10 tickets"), so the explanation matches the load factor."""
    for reason in decision.reasons:
        m = SLOT_REASON.match(reason)
        if m:
            return int(m.group(1)) - 1
    return None


def _details(item: WorkItem, ispec, aspec, load_before: int, now: dt.datetime) -> dict[str, Any]:
    """The facts an explanation is rendered from (in the reader's language, see explain.py)."""
    skills = []
    for key in [
        *sorted(item.skills or {}),
        *sorted(k for k in (item.preferred or {}) if k not in (item.skills or {})),
    ]:
        level = aspec.skills.get(key, 0)
        if level:
            skills.append([key, int(level)])
    return {
        "agent_name": aspec.name,
        "skills": skills,
        "load": load_before + 1,
        "capacity": int(aspec.capacity.get(item.channel, 0)),
        "channel": item.channel,
        "value_label": item.value_label,
        "sla_minutes": (int((item.sla_due_at - now).total_seconds() // 60) if item.sla_due_at else None),
        "affinity": item.last_agent_id is not None and item.last_agent_id == aspec.id,
        "waited_minutes": int(max(0.0, ispec.waited_seconds) // 60),
    }


def _apply(item: WorkItem, agent: User, decision, details: dict, now: dt.datetime) -> Assignment | None:
    team_reason = {f"{item.team_id} skill 5/5"} if item.team_id else set()
    try:
        with transaction.atomic():
            # The agent's profile row first (the order do_set_presence takes too): an agent who went
            # offline after this batch read the online agents gets nothing, and one going offline now
            # waits for this assignment to commit, then hands it back with the rest of their work.
            profile = AgentProfile.objects.select_for_update().filter(user_id=agent.pk).first()
            if profile is None or profile.presence != Presence.ONLINE or not profile.routable:
                return None
            locked = WorkItem.objects.select_for_update().get(pk=item.pk)
            if locked.status != WorkStatus.WAITING:
                return None
            assignment = Assignment.objects.create(
                work_item=locked,
                agent=agent,
                channel=locked.channel,
                policy=decision.policy,
                score=decision.score,
                factors=decision.factors,
                reasons=[r for r in decision.reasons if r not in team_reason],
                details=details,
                assigned_at=now,
            )
            locked.status = WorkStatus.ASSIGNED
            locked.excluded_agents = []
            locked.save(update_fields=["status", "excluded_agents", "updated_at"])
            _set_owner_assignee(locked, agent)
    except (EcrmError, IntegrityError, Conversation.DoesNotExist, Ticket.DoesNotExist) as exc:
        logger.warning(
            "routing could not give %s %s to user %s: %s", item.kind, item.object_id, agent.pk, exc
        )
        return None
    payload = {
        "type": "routing.assigned", "kind": item.kind, "object_id": item.object_id, "subject": item.subject,
        "assignment": assignment.pk, "reasons": assignment.reasons,
    }  # fmt: skip
    transaction.on_commit(lambda: (publish(f"user.{agent.pk}", payload), publish(DASHBOARD_GROUP, payload)))
    return assignment


def _set_owner_assignee(item: WorkItem, agent: User | None) -> None:
    """Give (or take back, agent=None) the object through its owning app's service."""
    from ecrm.conversations.services import do_assign
    from ecrm.service.services import do_update_ticket

    reason = "routing" if agent is not None else "routing.requeue"
    if item.kind == WorkKind.CONVERSATION:
        conv = Conversation.objects.get(pk=item.object_id)
        if conv.assignee_id != (agent.pk if agent else None):
            do_assign(conversation=conv, actor=None, assignee=agent, reason=reason)
    elif item.kind == WorkKind.TICKET:
        ticket = Ticket.objects.get(pk=item.object_id)
        if ticket.assignee_id != (agent.pk if agent else None):
            do_update_ticket(ticket=ticket, actor=None, changes={"assignee": agent})
    elif item.kind == WorkKind.CALLBACK:
        callback = CallbackRequest.objects.select_related("conversation").get(pk=item.object_id)
        if callback.conversation.assignee_id != (agent.pk if agent else None):
            do_assign(conversation=callback.conversation, actor=None, assignee=agent, reason=reason)
        # the callback follows its conversation's assignee (see callback/services.py); routing
        # moves both together because the callback row has no assignment service of its own
        CallbackRequest.objects.filter(pk=callback.pk).update(assignee=agent)


# --- failover ------------------------------------------------------------------------------------


def _requeue(assignment_id: int, reason: str, now: dt.datetime, *, exclude: bool) -> bool:
    with transaction.atomic():
        asg = Assignment.objects.select_for_update().filter(pk=assignment_id, ended_at__isnull=True).first()
        if asg is None:
            return False
        item = WorkItem.objects.select_for_update().get(pk=asg.work_item_id)
        asg.ended_at = now
        asg.end_reason = reason
        asg.save(update_fields=["ended_at", "end_reason"])
        if item.status == WorkStatus.DONE:
            return False
        item.status = WorkStatus.WAITING
        item.requeue_count += 1
        if exclude and asg.agent_id not in item.excluded_agents:
            item.excluded_agents = [*item.excluded_agents, asg.agent_id]
        item.save(update_fields=["status", "requeue_count", "excluded_agents", "updated_at"])
        try:
            with transaction.atomic():
                _set_owner_assignee(item, None)
        except (EcrmError, Conversation.DoesNotExist, Ticket.DoesNotExist, CallbackRequest.DoesNotExist):
            logger.warning("could not unassign %s %s while requeueing", item.kind, item.object_id)
    payload = {"type": "routing.requeued", "kind": item.kind, "object_id": item.object_id, "reason": reason}
    agent_id = asg.agent_id
    transaction.on_commit(lambda: (publish(f"user.{agent_id}", payload), publish(DASHBOARD_GROUP, payload)))
    return True


def release_agent(*, agent: User, reason: str = EndReason.OFFLINE, now: dt.datetime | None = None) -> int:
    """The agent went offline: every item they hold and have not answered yet goes back to the queue
    (answered ones stay theirs, the customer is mid-conversation with them)."""
    now = now or timezone.now()
    ids = list(
        Assignment.objects.filter(agent=agent, ended_at__isnull=True, responded_at__isnull=True).values_list(
            "pk", flat=True
        )
    )
    n = sum(_requeue(pk, reason, now, exclude=False) for pk in ids)
    if n:
        _route_soon()
    return n


def check_no_response(now: dt.datetime | None = None) -> int:
    """Assignments the agent has not answered within the timeout go back to the queue; the next solve
    gives them to someone else. A callback's clock starts at the time the customer asked for."""
    now = now or timezone.now()
    timeout = dt.timedelta(minutes=get_settings().no_response_minutes)
    candidates = Assignment.objects.filter(
        ended_at__isnull=True, responded_at__isnull=True, assigned_at__lt=now - timeout
    ).select_related("work_item")
    n = 0
    for asg in candidates:
        start = asg.assigned_at
        if asg.work_item.kind == WorkKind.CALLBACK and asg.work_item.sla_due_at:
            start = max(start, asg.work_item.sla_due_at)
        if start + timeout <= now:
            n += _requeue(asg.pk, EndReason.NO_RESPONSE, now, exclude=True)
    if n:
        _route_soon()
    return n


def check_idle_agents(now: dt.datetime | None = None) -> int:
    """Idle for idle_away_minutes -> away (no new work); idle_offline_minutes -> offline (work back
    to the queue). Idle = no activity since, or since presence last changed."""
    from .profiles import do_set_presence

    now = now or timezone.now()
    s = get_settings()
    changed = 0
    away_before = now - dt.timedelta(minutes=s.idle_away_minutes)
    offline_before = now - dt.timedelta(minutes=s.idle_offline_minutes)

    def idle_since(before: dt.datetime) -> Q:
        return Q(last_activity_at__lt=before) | Q(
            last_activity_at__isnull=True, presence_changed_at__lt=before
        )

    for profile in AgentProfile.objects.filter(idle_since(offline_before)).exclude(presence=Presence.OFFLINE):
        do_set_presence(actor=None, user=profile.user, presence=Presence.OFFLINE, source="idle")
        changed += 1
    for profile in AgentProfile.objects.filter(idle_since(away_before), presence=Presence.ONLINE):
        do_set_presence(actor=None, user=profile.user, presence=Presence.AWAY, source="idle")
        changed += 1
    return changed


def mark_responded(*, kind: str, object_id: int, agent_id: int | None, at: dt.datetime | None = None) -> int:
    """The assigned agent answered (a reply, a public comment): the no-reply timer stops."""
    if agent_id is None:
        return 0
    waiting = Assignment.objects.filter(
        work_item__kind=kind, work_item__object_id=object_id, agent_id=agent_id,
        ended_at__isnull=True, responded_at__isnull=True,
    )  # fmt: skip
    # read first: after the first answer there is nothing to write, and on SQLite even an UPDATE
    # that matches nothing takes the database's write lock
    return waiting.update(responded_at=at or timezone.now()) if waiting.exists() else 0


def reconcile_done(now: dt.datetime | None = None) -> int:
    """Complete open items whose object is finished or gone (a callback outcome recorded, an event
    missed while a worker was down)."""
    from .items import complete

    now = now or timezone.now()
    open_items = WorkItem.objects.exclude(status=WorkStatus.DONE)
    ids: dict[str, set[int]] = defaultdict(set)
    for kind, object_id in open_items.values_list("kind", "object_id"):
        ids[kind].add(object_id)
    live: dict[str, set[int]] = {
        WorkKind.CONVERSATION: set(
            Conversation.objects.filter(pk__in=ids[WorkKind.CONVERSATION])
            .exclude(status=ConversationStatus.RESOLVED)
            .values_list("pk", flat=True)
        ),
        WorkKind.TICKET: set(
            Ticket.objects.filter(pk__in=ids[WorkKind.TICKET], merged_into__isnull=True)
            .exclude(status__in=DONE_STATUSES)
            .values_list("pk", flat=True)
        ),
        WorkKind.CALLBACK: set(
            CallbackRequest.objects.filter(
                pk__in=ids[WorkKind.CALLBACK], status__in=(CallbackStatus.SCHEDULED, CallbackStatus.MISSED)
            ).values_list("pk", flat=True)
        ),
    }
    n = 0
    for kind, object_ids in ids.items():
        for object_id in object_ids - live.get(kind, set()):
            n += complete(kind=kind, object_id=object_id, now=now) is not None
    return n


def tick(now: dt.datetime | None = None) -> RouteResult:
    """The periodic pass: idleness, unanswered work, finished work, then one solve."""
    now = now or timezone.now()
    check_idle_agents(now)
    check_no_response(now)
    reconcile_done(now)
    return route_once(now=now)


def _route_soon() -> None:
    from ..tasks import route_task

    transaction.on_commit(route_task)
