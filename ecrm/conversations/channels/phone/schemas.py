"""The CTI webhook's event body."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, HttpUrl


class CallEventIn(BaseModel):
    """One call event. `from`/`to` are numbers in any format (normalised to E.164); `agent` is a
    username or an extension (mapped in the inbox settings); times must carry a UTC offset."""

    # CTIs add their own fields; those are ignored rather than refused
    model_config = ConfigDict(extra="ignore", populate_by_name=True, str_strip_whitespace=True)

    event: Literal["start", "answer", "end"]
    call_id: str = Field(min_length=1, max_length=120)
    direction: Literal["inbound", "outbound"]
    from_: str = Field(alias="from", min_length=1, max_length=40)
    to: str = Field(min_length=1, max_length=40)
    agent: str = Field(default="", max_length=150)
    recording_url: HttpUrl | None = Field(default=None)
    timestamp: AwareDatetime | None = None  # when this event happened; default: now
    started_at: AwareDatetime | None = None  # some CTIs repeat the call's start on every event


class CallEventOut(BaseModel):
    status: Literal["created", "updated", "duplicate"]
    call_id: str
    conversation: int
    customer: int
    message: int
    direction: str
    customer_number: str
    agent: str | None
    started_at: AwareDatetime
    answered_at: AwareDatetime | None
    ended_at: AwareDatetime | None
    duration_seconds: int | None
    recording_url: str
