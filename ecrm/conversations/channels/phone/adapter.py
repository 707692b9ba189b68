"""Phone: call log entries from a CTI webhook (start, answer, end), matched to customers by number.

A call's record is the reply, so the channel sends nothing (`can_reply = False`): what an agent
writes on a phone conversation stays as their note of the call. Click-to-call is a `tel:` link
(templatetags/conversations_phone.py) that the agent's softphone or CTI client dials.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..base import ChannelAdapter, register_adapter


class PhoneConfig(BaseModel):
    """Settings of a phone inbox: the CTI's signing secret and its extension → username map."""

    model_config = ConfigDict(extra="forbid")

    # When set, every webhook must carry `X-Signature: sha256=<hex HMAC-SHA256 of the raw body>`.
    signing_secret: str = Field(default="", max_length=200)
    extensions: dict[str, str] = Field(default_factory=dict)  # "8001" -> "agent_li"

    @field_validator("signing_secret")
    @classmethod
    def _long_enough(cls, value: str) -> str:
        if value and len(value) < 16:
            raise ValueError("use at least 16 characters, or leave it empty")
        return value

    @field_validator("extensions")
    @classmethod
    def _extensions(cls, value: dict[str, str]) -> dict[str, str]:
        for ext, username in value.items():
            if not re.fullmatch(r"[0-9*#]{1,20}", ext):
                raise ValueError(f"extension {ext!r}: digits, * and # only")
            if not username.strip():
                raise ValueError(f"extension {ext!r}: give the username")
        return {k: v.strip() for k, v in value.items()}


@register_adapter
class PhoneAdapter(ChannelAdapter):
    kind = "phone"
    config_schema = PhoneConfig
    can_reply = False


def _register_panel() -> None:
    from ...panels import register_conversation_panel
    from .panels import calls_panel

    register_conversation_panel("phone.calls", calls_panel)


_register_panel()
