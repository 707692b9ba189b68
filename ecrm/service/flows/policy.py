"""Who may fire a transition (shared by the transition service and the ticket panel's buttons)."""

from __future__ import annotations

from typing import Any

from ecrm.core.models import ApiKey, User
from ecrm.core.permissions import has_perm

from .models import FlowTransition


def refusal(transition: FlowTransition, actor: Any, team_ids: set[int] | None = None) -> str | None:
    """Why `actor` may not fire `transition` (None = allowed). The system (None) and API keys with
    write access are automations and may fire any step. Team limits do not bind managers and admins
    (they oversee every team); role limits bind everyone."""
    if actor is None or isinstance(actor, ApiKey):
        return None
    if not isinstance(actor, User) or not has_perm(actor, "service.edit"):
        return "You may not move tickets."
    if transition.roles and actor.role not in transition.roles and not actor.is_superuser:
        return f"Only {', '.join(transition.roles)} may take the step “{transition.label}”."
    allowed_teams = list(transition.teams.all())
    if allowed_teams and not has_perm(actor, "conversations.view_all"):
        mine = team_ids if team_ids is not None else set(actor.teams.values_list("id", flat=True))
        if not mine & {t.pk for t in allowed_teams}:
            names = ", ".join(t.name for t in allowed_teams)
            return f"Only members of {names} may take the step “{transition.label}”."
    return None
