"""The live chat channel: its inbox settings and how a reply reaches the visitor."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from django.conf import settings
from django.core.mail import EmailMessage
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..base import ChannelAdapter, DeliveryError, register_adapter

OFFLINE_THREAD_PREFIX = "offline:"


class ChatConfig(BaseModel):
    """Settings of one chat inbox (Inbox.config), validated when the inbox is created."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field("Chat with us", max_length=80)
    greeting: str = Field("", max_length=300)
    require_email: bool = False
    # Show the offline form when no agent of the inbox's team is online (see presence.py).
    offline_when_no_agent: bool = True
    # Offline messages go to this (email) inbox; without one they stay on this inbox and replies are
    # emailed by this adapter.
    offline_inbox_id: int | None = None
    offline_from_email: str = Field("", max_length=254)
    # Shop origins allowed to embed the widget ("https://shop.example"); empty: any origin.
    allowed_origins: list[str] = Field(default_factory=list, max_length=50)
    rate_limit_messages: int = Field(10, ge=1, le=1000)
    rate_limit_window_seconds: int = Field(10, ge=1, le=3600)
    max_message_chars: int = Field(4000, ge=1, le=20000)

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        clean = []
        for origin in value:
            origin = origin.strip().rstrip("/")
            if not origin.startswith(("http://", "https://")) or "/" in origin.split("://", 1)[1]:
                raise ValueError(f"{origin!r} is not an origin like https://shop.example")
            clean.append(origin.lower())
        return clean


@register_adapter
class ChatAdapter(ChannelAdapter):
    kind = "chat"
    config_schema: ClassVar[type[BaseModel]] = ChatConfig
    can_reply = True

    def delivered_on_commit(self, conversation) -> dict[str, Any] | None:
        """A live chat reply is delivered by the WebSocket push `do_send_reply` publishes to
        `conversation.<id>` at commit: no job (and no write for one) for it."""
        if conversation.thread_key.startswith(OFFLINE_THREAD_PREFIX):
            return None
        return {"delivered_by": "websocket"}

    def send(self, message) -> dict[str, Any]:
        """An offline conversation (the visitor left an email) is answered by email; a live one needs
        no sending (see `delivered_on_commit`), should a queued reply reach here."""
        conversation = message.conversation
        live = self.delivered_on_commit(conversation)
        if live is not None:
            return live
        if "@" not in conversation.contact:
            raise DeliveryError("the offline visitor left no email address", permanent=True)
        cfg = self.config(message.inbox)
        message_id = f"<chat-{message.pk}-{uuid.uuid4().hex[:12]}@ecrm>"
        subject = conversation.subject or "Re: your message"
        mail = EmailMessage(
            subject=subject if subject.lower().startswith("re:") else f"Re: {subject}",
            body=message.body_text,
            from_email=cfg.offline_from_email or settings.DEFAULT_FROM_EMAIL,
            to=[conversation.contact],
            headers={"Message-ID": message_id},
        )
        try:
            mail.send(fail_silently=False)
        except OSError as exc:  # SMTP down: retried by the task
            raise DeliveryError(f"mail server unavailable: {exc}") from exc
        return {"external_id": message_id, "delivered_by": "email"}
