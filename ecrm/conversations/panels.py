"""Panels other apps add to the conversation view's sidebar (service adds open tickets and a
"create ticket" form; knowledge adds suggested articles). A provider returns None or a dict
{"title": str, "template": "app/partials/_x.html", "context": {...}, "order": int}."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ConversationPanel = Callable[[Any, Any], "dict[str, Any] | None"]  # (conversation, user) -> panel
_PANELS: dict[str, ConversationPanel] = {}


def register_conversation_panel(name: str, provider: ConversationPanel) -> None:
    _PANELS[name] = provider


def conversation_panels(conversation: Any, user: Any) -> list[dict[str, Any]]:
    panels = [p for p in (provider(conversation, user) for provider in _PANELS.values()) if p]
    return sorted(panels, key=lambda p: p.get("order", 100))
