"""In/Out schemas of the workflows API. Conditions and actions are free-form JSON here; the
service validates them with field-level errors (422)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ninja import Schema
from pydantic import Field


class RuleIn(Schema):
    name: str = Field(max_length=200)
    description: str = ""
    triggers: list[str]
    conditions: dict[str, Any] = {}
    actions: list[dict[str, Any]]
    schedule_subject: str = ""
    schedule_every: int = 60
    is_active: bool = True
    stop_processing: bool = False


class RuleOut(Schema):
    id: int
    name: str
    description: str
    triggers: list[str]
    conditions: dict[str, Any]
    actions: list[dict[str, Any]]
    schedule_subject: str
    schedule_every: int
    position: int
    is_active: bool
    stop_processing: bool
    evaluated_count: int
    matched_count: int
    updated_at: dt.datetime


class DryRunIn(RuleIn):
    id: int | None = None
    limit: int = 200


class DryRunRecord(Schema):
    subject_type: str
    subject_id: int
    label: str
    url: str


class DryRunOut(Schema):
    checked: int
    matched: int
    limit: int
    ms: float
    records: list[DryRunRecord]


class ActiveIn(Schema):
    active: bool


class OrderIn(Schema):
    rule_ids: list[int]


class RunOut(Schema):
    id: int
    rule_id: int | None
    rule_name: str
    event_name: str
    event_id: str
    subject_type: str
    subject_id: int | None
    chain: int
    status: str
    actions: list[dict[str, Any]]
    error: str
    duration_ms: float
    at: dt.datetime


class RunPageOut(Schema):
    items: list[RunOut]
    next_before: int | None


class ImportIn(Schema):
    yaml: str = Field(max_length=2 * 1024 * 1024)
    dry_run: bool = False


class TaskOut(Schema):
    id: int
    title: str
    description: str
    due_at: dt.datetime | None
    team: str | None
    assignee: str | None
    subject_type: str
    subject_id: int | None
    url: str
    status: str
    created_at: dt.datetime


class NotificationOut(Schema):
    id: int
    message: str
    team: str | None
    subject_type: str
    subject_id: int | None
    url: str
    created_at: dt.datetime
    read_at: dt.datetime | None
