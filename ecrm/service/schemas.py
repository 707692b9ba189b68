"""What the service API reads and returns: tickets, comments, returns."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Literal

from ninja import Schema
from pydantic import ConfigDict, Field

TicketTypeIn = Literal["question", "complaint", "return_refund", "delivery_problem", "technical"]
PriorityIn = Literal["low", "normal", "high", "urgent"]
StatusIn = Literal["new", "open", "pending", "on_hold", "solved", "closed"]


class _In(Schema):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TicketCreateIn(_In):
    customer_id: int
    subject: str = Field(min_length=1, max_length=300)
    body: str = Field("", max_length=20_000)
    type: TicketTypeIn = "question"
    priority: PriorityIn = "normal"
    team_id: int | None = None
    assignee_id: int | None = None
    order_number: str | None = Field(None, max_length=64, description="the shop's order number")
    conversation_id: int | None = None
    tags: list[str] = Field(default_factory=list, max_length=20)
    custom_fields: dict[str, Any] = Field(default_factory=dict)


class TicketUpdateIn(_In):
    subject: str | None = Field(None, min_length=1, max_length=300)
    type: TicketTypeIn | None = None
    priority: PriorityIn | None = None
    status: StatusIn | None = None
    team_id: int | None = None
    assignee_id: int | None = None
    tags: list[str] | None = None
    custom_fields: dict[str, Any] | None = None


class CommentIn(_In):
    body: str = Field(min_length=1, max_length=20_000)
    public: bool = True


class MergeIn(_In):
    target_id: int


class ReturnIn(_In):
    order_line_id: int
    quantity: Decimal = Field(gt=0, max_digits=12, decimal_places=3)
    reason: str = Field(min_length=1, max_length=255)
    ticket_id: int | None = None


class ReturnStatusIn(_In):
    status: Literal["approved", "received", "refunded", "rejected"]
    refund_amount: Decimal | None = Field(None, gt=0, max_digits=14, decimal_places=2)


class TicketOut(Schema):
    id: int
    number: str
    subject: str
    description: str
    type: str
    priority: str
    status: str
    source: str
    team_id: int | None
    assignee_id: int | None
    customer_id: int
    order_id: int | None
    merged_into_id: int | None
    tags: list[str]
    custom_fields: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime
    solved_at: dt.datetime | None
    first_response_at: dt.datetime | None
    first_response_due: dt.datetime | None
    resolution_due: dt.datetime | None
    first_response_breached: bool
    resolution_breached: bool


class TicketPageOut(Schema):
    items: list[TicketOut]
    next_after: int | None


class CommentOut(Schema):
    id: int
    direction: str
    body: str
    author_id: int | None
    created_at: dt.datetime


class TicketDetailOut(TicketOut):
    comments: list[CommentOut]
    conversation_ids: list[int]


class ReturnOut(Schema):
    id: int
    return_id: int
    ticket_id: int | None
    customer_id: int
    order_line_id: int | None
    quantity: str = Field(description="a decimal, as a string")
    status: str
    refund_amount: str | None = Field(description="a decimal, as a string")
    created_at: dt.datetime
