"""API schemas of callback requests."""

from __future__ import annotations

import datetime as dt

from ninja import Schema
from pydantic import ConfigDict, Field


class CallbackIn(Schema):
    model_config = ConfigDict(extra="forbid")

    phone: str = Field(min_length=1, max_length=40)
    requested_for: dt.datetime  # ISO 8601; without an offset it is read in the inbox's time zone
    name: str = Field(default="", max_length=100)
    email: str = Field(default="", max_length=254)
    note: str = Field(default="", max_length=2000)
    customer_id: int | None = None  # a customer the shop already knows (e.g. signed in)


class CallbackOut(Schema):
    id: int
    conversation: int
    customer: int
    phone: str
    requested_for: dt.datetime
    status: str
    assignee: int | None
