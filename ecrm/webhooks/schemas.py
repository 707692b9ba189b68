"""In/Out schemas of the webhooks REST API (api.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from ninja import Field, Schema


class EndpointIn(Schema):
    name: str = Field(..., max_length=120)
    url: str = Field(..., max_length=1000)
    events: list[str]
    is_active: bool = True


class EndpointPatch(Schema):
    name: str | None = Field(None, max_length=120)
    url: str | None = Field(None, max_length=1000)
    events: list[str] | None = None
    is_active: bool | None = None


class EndpointOut(Schema):
    id: int
    name: str
    url: str
    events: list[str]
    is_active: bool
    consecutive_failures: int
    disabled_at: dt.datetime | None
    disabled_reason: str
    created_by: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


class EndpointCreatedOut(EndpointOut):
    secret: str  # shown once; rotate it to get a new one


class SecretOut(Schema):
    secret: str


class DeliveryQuery(Schema):
    endpoint: int | None = None
    status: Literal["", "pending", "succeeded", "failed", "giving_up"] = ""
    event: str = Field("", max_length=64)
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0)


class DeliveryOut(Schema):
    id: int
    delivery_id: str  # the X-Ecrm-Delivery header
    endpoint_id: int
    endpoint: str
    event_id: str
    event_name: str
    status: str
    attempts: int
    next_attempt_at: dt.datetime | None
    last_status: int | None
    error: str
    duration_ms: int | None
    created_at: dt.datetime
    delivered_at: dt.datetime | None


class AttemptOut(Schema):
    number: int
    manual: bool
    started_at: dt.datetime
    url: str
    request_headers: dict[str, Any]
    status_code: int | None
    response_headers: dict[str, Any]
    response_excerpt: str
    error: str
    duration_ms: int


class DeliveryDetailOut(DeliveryOut):
    payload: Any
    response_excerpt: str
    attempt_log: list[AttemptOut]


class DeliveryPageOut(Schema):
    count: int
    items: list[DeliveryOut]


class EventNameOut(Schema):
    name: str
    subject_type: str
    data: str


class AllowedIn(Schema):
    value: str = Field(..., max_length=200)
    note: str = Field("", max_length=200)


class AllowedOut(Schema):
    id: int
    value: str
    note: str
    created_by: str | None
    created_at: dt.datetime
