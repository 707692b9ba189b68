"""Social and messaging: a generic inbound webhook for mentions and direct messages from any
platform (Weibo, WeChat official accounts, Douyin, X...), sent by a connector the shop runs.

Answers are written on the platform itself (its APIs differ per platform and account), so the
channel sends nothing: an agent's reply here is kept as the record (`can_reply = False`).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..base import ChannelAdapter, register_adapter


class SocialConfig(BaseModel):
    """Settings of a social inbox: the connector's signing secret."""

    model_config = ConfigDict(extra="forbid")

    # When set, every webhook must carry `X-Signature: sha256=<hex HMAC-SHA256 of the raw body>`.
    signing_secret: str = Field(default="", max_length=200)

    @field_validator("signing_secret")
    @classmethod
    def _long_enough(cls, value: str) -> str:
        if value and len(value) < 16:
            raise ValueError("use at least 16 characters, or leave it empty")
        return value


@register_adapter
class SocialAdapter(ChannelAdapter):
    kind = "social"
    config_schema = SocialConfig
    can_reply = False
