"""In/Out schemas of the customers API."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from ninja import Schema
from pydantic import Field


class IdentityIn(Schema):
    kind: Literal["email", "phone", "anonymous", "external", "wechat", "social"]
    value: str = Field(min_length=1, max_length=254)


class ConsentIn(Schema):
    purpose: Literal["marketing", "analytics", "service"]
    channel: Literal["email", "sms", "phone", "wechat", "web"]
    granted: bool
    source: str = Field(default="", max_length=64)


class CustomerUpsertIn(Schema):
    """Identities decide who the customer is; traits are the profile fields to set."""

    identities: list[IdentityIn] = Field(default_factory=list, max_length=50)
    traits: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list, max_length=100)
    consents: list[ConsentIn] = Field(default_factory=list, max_length=50)


class IdentityOut(Schema):
    kind: str
    value: str
    source: str


class ConsentOut(Schema):
    purpose: str
    channel: str
    granted: bool
    source: str
    recorded_at: dt.datetime


class CustomerSummaryOut(Schema):
    id: int
    display_name: str
    email: str | None
    phone: str | None
    city: str
    country: str
    lifecycle_stage: str
    tags: list[str]
    last_seen_at: dt.datetime | None
    created_at: dt.datetime


class CustomerOut(Schema):
    id: int
    status: str
    merged_into: int | None
    first_name: str
    last_name: str
    display_name: str
    email: str | None
    phone: str | None
    birthday: dt.date | None
    gender: str
    locale: str
    city: str
    country: str
    lifecycle_stage: str
    custom_attributes: dict[str, Any]
    tags: list[str]
    identities: list[IdentityOut]
    consents: list[ConsentOut]
    first_seen_at: dt.datetime | None
    last_seen_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    created: bool = False


class CustomerPageOut(Schema):
    items: list[CustomerSummaryOut]
    next_after: int | None = Field(description="Pass as `after` for the next page; null on the last page.")


class MergeIn(Schema):
    merged_id: int = Field(description="The customer that is merged into the one in the path (the survivor).")
    field_choices: dict[str, Literal["survivor", "merged"]] = Field(default_factory=dict)
    candidate_id: int | None = None


class MergeOut(Schema):
    id: int
    survivor_id: int
    merged_id: int
    moved: dict[str, int] = Field(description="Rows moved per relation (app.model.field -> count).")
    field_choices: dict[str, str]
    created_at: dt.datetime
    unmerged_at: dt.datetime | None
