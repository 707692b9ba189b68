"""Why the conversation or ticket went to whom: the explanation panel on both pages."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from ecrm.core.permissions import has_perm

from .models import WorkKind


def _panel(kind: str, object_id: int, user: Any) -> dict[str, Any] | None:
    from . import explain, selectors

    assignments = selectors.assignments_of(kind, object_id)
    if not assignments:
        return None
    current = assignments[0]
    return {
        "title": _("Routing"),
        "template": "routing/partials/_explanation.html",
        "context": {
            "assignment": current,
            "sentence": explain.sentence(current),
            "factors": explain.factor_rows(current),
            "history": [{"assignment": a, "sentence": explain.sentence(a)} for a in assignments[1:]],
            "can_configure": has_perm(user, "routing.configure"),
        },
        "order": 20,
    }


def conversation_panel(conversation: Any, user: Any) -> dict[str, Any] | None:
    # the pages already checked the user may see the object; agents see why they got it
    if not has_perm(user, "conversations.view"):
        return None
    if conversation.channel == "callback":
        from ecrm.conversations.models import CallbackRequest

        callback_id = (
            CallbackRequest.objects.filter(conversation=conversation).values_list("pk", flat=True).first()
        )
        if callback_id:
            return _panel(WorkKind.CALLBACK, callback_id, user)
    return _panel(WorkKind.CONVERSATION, conversation.pk, user)


def ticket_panel(ticket: Any, user: Any) -> dict[str, Any] | None:
    if not has_perm(user, "service.view"):
        return None
    return _panel(WorkKind.TICKET, ticket.pk, user)


def register_all() -> None:
    from ecrm.conversations.panels import register_conversation_panel
    from ecrm.service.panels import register_ticket_panel

    register_conversation_panel("routing.explanation", conversation_panel)
    register_ticket_panel("routing.explanation", ticket_panel)
