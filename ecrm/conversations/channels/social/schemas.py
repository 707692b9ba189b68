"""The social webhook's message body."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator


class SocialMessageIn(BaseModel):
    """One mention or direct message. `external_id` is the platform's post/message id (a resend is
    stored once); `thread_id` groups a conversation (a DM thread, a post's comment thread)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    platform: str = Field(min_length=1, max_length=30, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    kind: Literal["mention", "direct"]
    handle: str = Field(min_length=1, max_length=100)
    display_name: str = Field(default="", max_length=100)
    text: str = Field(default="", max_length=10_000)
    link: HttpUrl | None = None
    external_id: str = Field(min_length=1, max_length=200)
    thread_id: str = Field(default="", max_length=200)
    sent_at: AwareDatetime | None = None

    @field_validator("platform")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()

    @field_validator("handle")
    @classmethod
    def _handle(cls, value: str) -> str:
        # "@Alice" and "alice" are the same account: the identity is stored as "weibo:alice"
        handle = value.lstrip("@").strip()
        if not handle or any(ch.isspace() for ch in handle):
            raise ValueError("a handle has no spaces")
        return handle

    @model_validator(mode="after")
    def _has_content(self) -> SocialMessageIn:
        if not self.text and not self.link:
            raise ValueError("text or link is required")
        return self


class SocialResultOut(BaseModel):
    status: Literal["created", "duplicate"]
    conversation: int
    customer: int
    message: int
    created_customer: bool = False
