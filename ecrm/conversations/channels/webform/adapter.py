"""Web forms: forms defined in the console, embedded on the shop, each submission a conversation.

The customer's address came from the form's email field, so an agent's reply goes back by mail
through Django's mail backend (SMTP in production). A form sent with only a phone number cannot be
answered in writing: the reply is marked failed with that reason, and the agent calls instead.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..base import ChannelAdapter, DeliveryError, register_adapter


class WebFormConfig(BaseModel):
    """Settings of a web-form inbox (shared by every form on it)."""

    model_config = ConfigDict(extra="forbid")

    # What a submission creates: "conversation" now; the leads app registers "lead" later
    # (services.register_submission_target).
    creates: str = "conversation"
    reply_from: str = ""  # the From of replies; empty: DEFAULT_FROM_EMAIL
    rate_limit_per_hour: int = Field(default=20, ge=1, le=10_000)
    min_fill_seconds: int = Field(default=3, ge=0, le=600)

    @field_validator("creates")
    @classmethod
    def _known_target(cls, value: str) -> str:
        from .services import submission_targets

        if value not in submission_targets():
            raise ValueError(f"must be one of {', '.join(sorted(submission_targets()))}")
        return value


@register_adapter
class WebFormAdapter(ChannelAdapter):
    kind = "webform"
    config_schema = WebFormConfig
    can_reply = True

    def send(self, message) -> dict[str, Any]:
        from django.conf import settings
        from django.core.mail import EmailMessage
        from django.core.mail.message import make_msgid

        to = message.conversation.contact or ""
        if "@" not in to:
            raise DeliveryError("the form had no email address to answer", permanent=True)
        config = self.config(message.inbox)
        msgid = make_msgid(domain="ecrm.local")
        subject = message.conversation.subject or "Your message"
        mail = EmailMessage(
            subject=f"Re: {subject}",
            body=message.body_text,
            from_email=config.reply_from or settings.DEFAULT_FROM_EMAIL,
            to=[to],
            headers={"Message-ID": msgid},
        )
        try:
            mail.send()
        except OSError as exc:  # SMTP down: the task retries with backoff
            raise DeliveryError(f"mail server: {exc}") from exc
        return {"external_id": msgid}
