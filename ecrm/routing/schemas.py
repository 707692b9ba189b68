"""In/Out schemas of the routing REST API."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from ninja import Field, Schema


class QueueOut(Schema):
    id: int | None
    name: str
    priority: int
    team_id: int | None
    channels: list[str]
    required_skills: dict[str, int]
    sla_minutes: int | None
    waiting: int
    assigned: int
    oldest_wait_minutes: int | None
    near_breach: int
    breached: int


class CurrentAssignmentOut(Schema):
    agent_id: int
    policy: str
    score: float
    reasons: list[str]
    factors: dict[str, float]
    assigned_at: dt.datetime


class WorkItemOut(Schema):
    id: int
    kind: str
    object_id: int
    status: str
    channel: str
    queue_id: int | None
    team_id: int | None
    skills: dict[str, int]
    preferred: dict[str, int]
    priority: int
    value: float
    enqueued_at: dt.datetime
    sla_due_at: dt.datetime | None
    requeue_count: int
    assignment: CurrentAssignmentOut | None


class WorkItemPageOut(Schema):
    count: int
    items: list[WorkItemOut]


class WorkItemQuery(Schema):
    status: Literal["waiting", "assigned", "done"] | None = None
    queue: int | None = None
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0)


class AgentOut(Schema):
    id: int
    username: str
    name: str
    presence: str
    presence_changed_at: dt.datetime | None
    last_activity_at: dt.datetime | None
    routable: bool
    skills: dict[str, int]
    capacity: dict[str, int]
    load: dict[str, int]


class PresenceIn(Schema):
    presence: Literal["online", "away", "offline"]


class PresenceOut(Schema):
    user_id: int
    presence: str
    changed_at: dt.datetime | None
