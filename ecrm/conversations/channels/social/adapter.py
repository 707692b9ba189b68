"""Social and messaging: a generic inbound webhook for mentions and direct messages from any
platform (Weibo, WeChat official accounts, Douyin, X...), sent by a connector the shop runs.

Replies go back through the same connector: with a `reply_url` set, an agent's reply is POSTed there
as JSON (signed with the inbox's `signing_secret` in `X-Ecrm-Signature`, through `core/http.py`), and
the connector posts it on the platform. Without one, the reply is marked failed with that reason, so
nobody believes a customer was answered when they were not.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator

from ecrm.core import http

from ..base import ChannelAdapter, DeliveryError, register_adapter


class SocialConfig(BaseModel):
    """Settings of a social inbox: the connector's signing secret and its reply endpoint."""

    model_config = ConfigDict(extra="forbid")

    # When set, every webhook must carry `X-Signature: sha256=<hex HMAC-SHA256 of the raw body>`,
    # and replies sent to `reply_url` are signed the same way (`X-Ecrm-Signature`).
    signing_secret: str = Field(default="", max_length=200)
    reply_url: HttpUrl | None = None

    @field_validator("signing_secret")
    @classmethod
    def _long_enough(cls, value: str) -> str:
        if value and len(value) < 16:
            raise ValueError("use at least 16 characters, or leave it empty")
        return value


def reply_payload(message) -> dict[str, Any]:
    """What the connector needs to post the reply: where (the customer's latest post or thread)."""
    from ...models import Message, MessageDirection

    conv = message.conversation
    last = (
        Message.objects.filter(conversation=conv, direction=MessageDirection.INBOUND)
        .order_by("-created_at", "-id")
        .values_list("metadata", flat=True)
        .first()
    ) or {}
    social = last.get("social", {})
    return {
        "platform": social.get("platform", ""),
        "kind": social.get("kind", ""),
        "handle": social.get("handle", ""),
        "thread_id": social.get("thread_id", ""),
        "in_reply_to": social.get("post_id", ""),
        "text": message.body_text,
        "message_id": message.pk,
        "conversation": conv.pk,
    }


@register_adapter
class SocialAdapter(ChannelAdapter):
    kind = "social"
    config_schema = SocialConfig
    can_reply = True

    def send(self, message) -> dict[str, Any]:
        config = self.config(message.inbox)
        if not config.reply_url:
            raise DeliveryError("this social inbox has no reply connector (reply_url): answer on the platform",
                                permanent=True)  # fmt: skip
        payload = reply_payload(message)
        try:
            response = http.send(
                "POST", str(config.reply_url), body=orjson.dumps(payload),
                headers={"Content-Type": "application/json"}, secret=config.signing_secret or None,
            )  # fmt: skip
        except http.OutboundRefused as exc:
            raise DeliveryError(f"reply connector refused: {exc}", permanent=True) from exc
        except OSError as exc:  # timeouts, connection refused: retried with backoff
            raise DeliveryError(f"reply connector unreachable: {exc}") from exc
        if 200 <= response.status < 300:
            try:
                post_id = str((orjson.loads(response.body or b"{}") or {}).get("external_id") or "")
            except (orjson.JSONDecodeError, AttributeError):
                post_id = ""
            return {"external_id": f"{payload['platform']}:{post_id}"} if post_id else {}
        if 400 <= response.status < 500 and response.status not in (408, 429):
            raise DeliveryError(f"reply connector answered HTTP {response.status}", permanent=True)
        raise DeliveryError(f"reply connector answered HTTP {response.status}")
