"""The callback's sidebar panel on its conversation: when to call, status, and the outcome form."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from ecrm.core.permissions import has_perm

from ...models import CallbackRequest, ChannelKind
from .services import OUTCOMES


def callback_panel(conversation: Any, user: Any) -> dict[str, Any] | None:
    if conversation.channel != ChannelKind.CALLBACK:
        return None
    callback = CallbackRequest.objects.select_related("assignee").filter(conversation=conversation).first()
    if callback is None:
        return None
    return {
        "title": _("Callback"),
        "template": "conversations/channels/callback/_panel.html",
        "context": {
            "callback": callback,
            "outcomes": [(s.value, s.label) for s in OUTCOMES],
            "can_record": has_perm(user, "conversations.reply")
            and callback.status in ("scheduled", "missed"),
        },
        "order": 10,
    }
