"""The phone conversation's sidebar panel: the customer's recent calls on this thread."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from ...models import CallRecord, ChannelKind


def calls_panel(conversation: Any, user: Any) -> dict[str, Any] | None:
    if conversation.channel != ChannelKind.PHONE:
        return None
    calls = list(
        CallRecord.objects.filter(conversation=conversation)
        .select_related("agent")
        .order_by("-started_at")[:10]
    )
    if not calls:
        return None
    return {
        "title": _("Calls"),
        "template": "conversations/channels/phone/_panel.html",
        "context": {"calls": calls, "number": calls[0].customer_number},
        "order": 10,
    }
