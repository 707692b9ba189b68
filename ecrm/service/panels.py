"""Panels other apps add to the ticket page's side column (routing adds why the ticket went to whom;
the complaint flow adds its stage and next steps). A provider returns None or a dict
{"title": str, "template": "app/partials/_x.html", "context": {...}, "order": int}."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)

TicketPanel = Callable[[Any, Any], "dict[str, Any] | None"]  # (ticket, user) -> panel
_PANELS: dict[str, TicketPanel] = {}


def register_ticket_panel(name: str, provider: TicketPanel) -> None:
    _PANELS[name] = provider


def ticket_panels(ticket: Any, user: Any) -> list[dict[str, Any]]:
    panels = [p for p in (provider(ticket, user) for provider in _PANELS.values()) if p]
    return sorted(panels, key=lambda p: p.get("order", 100))


def render_ticket_panels(request: Any, ticket: Any) -> list[dict[str, str]]:
    """Each panel as {"title", "html"}; one app's missing template never takes the page down."""
    out = []
    for panel in ticket_panels(ticket, request.user):
        context = {**panel.get("context", {}), "ticket": ticket, "panel": panel}
        try:
            html = render_to_string(panel["template"], context, request=request)
        except TemplateDoesNotExist:
            logger.exception("ticket panel template %s is missing", panel.get("template"))
            continue
        out.append({"title": panel.get("title", ""), "html": html})
    return out
