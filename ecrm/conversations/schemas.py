"""In/Out schemas of the inbox REST API (inbox_api.py)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from ninja import Field, Schema


class ConversationListQuery(Schema):
    view: Literal["all", "mine", "unassigned", "teams"] = "all"
    status: Literal["open", "pending", "resolved", "any"] = "open"
    channel: str = ""
    inbox: int | None = None
    q: str = Field("", max_length=200)
    after: str | None = None
    limit: int = Field(50, ge=1, le=200)


class CustomerRef(Schema):
    id: int
    name: str
    email: str | None = None


class UserRef(Schema):
    id: int
    username: str
    name: str


class ConversationOut(Schema):
    id: int
    subject: str
    channel: str
    inbox_id: int
    inbox: str
    team_id: int | None
    status: str
    assignee: UserRef | None
    customer: CustomerRef
    contact: str
    unread: int
    last_message_at: dt.datetime | None
    created_at: dt.datetime


class AttachmentOut(Schema):
    id: int
    filename: str
    content_type: str
    size: int


class MessageOut(Schema):
    id: int
    direction: str
    author: UserRef | None
    sender: str
    body_text: str
    body_html: str  # sanitised with nh3 on the way in; show it only in a sandboxed frame
    status: str
    error: str
    created_at: dt.datetime
    read_at: dt.datetime | None
    attachments: list[AttachmentOut]


class ConversationDetailOut(ConversationOut):
    messages: list[MessageOut]


class ConversationPageOut(Schema):
    items: list[ConversationOut]
    next_cursor: str | None


class ReplyIn(Schema):
    body: str = Field(..., min_length=1, max_length=20_000)


class NoteIn(Schema):
    body: str = Field(..., min_length=1, max_length=20_000)


class AssignIn(Schema):
    assignee: int | None = Field(None, description="user id; null unassigns")
    team: int | None = Field(None, description="move to this team (optional)")


class StatusIn(Schema):
    status: Literal["open", "pending", "resolved"]
