"""Reads on conversations, with the visibility rule in one place: managers and admins see all;
agents see conversations on their teams, with no team, or assigned to them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet

from ecrm.core.exceptions import NotFound
from ecrm.core.models import Team, User
from ecrm.core.permissions import check_perm, has_perm

from .models import Conversation, Message


def visibility_q(user: Any, prefix: str = "") -> Q:
    """The Q that limits any query on conversations (or things on them, via `prefix`) to `user`."""
    if has_perm(user, "conversations.view_all"):
        return Q()
    team_ids = list(user.teams.values_list("id", flat=True))
    return (
        Q(**{f"{prefix}team_id__in": team_ids})
        | Q(**{f"{prefix}team__isnull": True})
        | Q(**{f"{prefix}assignee_id": user.pk})
    )


def can_see_conversation(user: Any, conversation: Conversation) -> bool:
    if not has_perm(user, "conversations.view"):
        return False
    if has_perm(user, "conversations.view_all"):
        return True
    if conversation.assignee_id == user.pk or conversation.team_id is None:
        return True
    return user.teams.filter(pk=conversation.team_id).exists()


def check_conversation_visible(user: Any, conversation: Conversation) -> None:
    if not can_see_conversation(user, conversation):
        # 404, not 403: an agent must not learn that another team's conversation exists
        raise NotFound("No such conversation.")


def can_work_on(user: User, team: Team | None) -> bool:
    """May `user` be assigned work on `team`?"""
    if not user.is_active or not has_perm(user, "conversations.reply"):
        return False
    return team is None or has_perm(user, "conversations.view_all") or user.teams.filter(pk=team.pk).exists()


def conversations_for_user(user: Any) -> QuerySet[Conversation]:
    check_perm(user, "conversations.view")
    return Conversation.objects.filter(visibility_q(user))


def access_conversation_for_user(user: Any, conversation_id: int) -> Conversation:
    check_perm(user, "conversations.view")
    conv = (
        Conversation.objects.select_related("customer", "inbox", "team", "assignee")
        .filter(pk=conversation_id)
        .filter(visibility_q(user))
        .first()
    )
    if conv is None:
        raise NotFound("No such conversation.")
    return conv


def conversation_messages(conversation: Conversation) -> QuerySet[Message]:
    return (
        Message.objects.filter(conversation=conversation)
        .select_related("author")
        .prefetch_related("attachments")
        .order_by("created_at", "id")
    )


@dataclass
class InboxFilters:
    view: str = "all"  # mine | unassigned | teams | all
    status: str = "open"  # open | pending | resolved | any
    channel: str = ""
    inbox: int | None = None
    q: str = ""


def team_agents(team_id: int) -> list[User]:
    """Active members of a team who may take conversations, in a stable order."""
    return list(
        User.objects.filter(teams__id=team_id, is_active=True, role__in=["agent", "manager"]).order_by("id")
    )
