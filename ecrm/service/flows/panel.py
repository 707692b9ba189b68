"""The ticket page's "Stage" panel: the current stage, its team and SLA, the steps this user may
take (as buttons), and the history (registered in ServiceConfig.ready)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from ecrm.core.permissions import has_perm


def stage_panel(ticket: Any, user: Any) -> dict[str, Any] | None:
    from .selectors import ticket_flow_view

    view = ticket_flow_view(ticket, user)
    if view is None:
        return None
    return {
        "title": _("Stage"),
        "template": "service/flows/_stage_panel.html",
        "context": {**view, "can_move": has_perm(user, "service.edit")},
        "order": 10,
    }


def register() -> None:
    from ..panels import register_ticket_panel

    register_ticket_panel("ticket_flow", stage_panel)
