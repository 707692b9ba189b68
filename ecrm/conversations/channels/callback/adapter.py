"""Callback requests: a customer asks for a call at a chosen time; an agent calls back.

The reply to a callback is the call itself, so the channel sends nothing: what an agent writes on a
callback conversation is kept as the record of the call (`can_reply = False`).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from django.conf import settings
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..base import ChannelAdapter, register_adapter


class CallbackConfig(BaseModel):
    """Settings of a callback inbox: how far ahead customers may book, and (optionally) the hours."""

    model_config = ConfigDict(extra="forbid")

    min_notice_minutes: int = Field(default=15, ge=0, le=24 * 60)
    max_days_ahead: int = Field(default=30, ge=1, le=30)
    # Business hours in `timezone`; both empty: any time. days: 0 = Monday ... 6 = Sunday.
    timezone: str = Field(default_factory=lambda: settings.TIME_ZONE)
    opens: dt.time | None = None
    closes: dt.time | None = None
    days: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4, 5, 6])
    rate_limit_per_hour: int = Field(default=10, ge=1, le=10_000)
    min_fill_seconds: int = Field(default=3, ge=0, le=600)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("unknown time zone") from exc
        return value

    @field_validator("days")
    @classmethod
    def _weekdays(cls, value: list[int]) -> list[int]:
        if not value or any(d not in range(7) for d in value):
            raise ValueError("days are 0 (Monday) to 6 (Sunday), at least one")
        return sorted(set(value))

    @model_validator(mode="after")
    def _hours(self) -> CallbackConfig:
        if (self.opens is None) != (self.closes is None):
            raise ValueError("set both opening and closing time, or neither")
        if self.opens is not None and self.closes is not None and self.opens >= self.closes:
            raise ValueError("the closing time must be after the opening time")
        return self


@register_adapter
class CallbackAdapter(ChannelAdapter):
    kind = "callback"
    config_schema = CallbackConfig
    can_reply = False


def _register_panel() -> None:
    from ...panels import register_conversation_panel
    from .panels import callback_panel

    register_conversation_panel("callback.request", callback_panel)


_register_panel()
