"""Reads on callback requests, scoped by the conversation visibility rule (an agent sees the
callbacks of their teams' conversations and the ones assigned to them)."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from ecrm.core.exceptions import NotFound, ValidationFailed
from ecrm.core.permissions import check_perm

from ...models import CallbackRequest, CallbackStatus
from ...selectors import visibility_q

VIEWS = ("mine", "team", "all")
STATES = ("upcoming", "closed")


def callbacks_for_user(
    user: Any, *, view: str = "mine", state: str = "upcoming"
) -> QuerySet[CallbackRequest]:
    """mine: assigned to me (or on a conversation assigned to me); team: on my teams; all: all I may
    see. upcoming: still to call (scheduled or no answer yet), soonest first; closed: the rest, newest."""
    check_perm(user, "conversations.view")
    if view not in VIEWS:
        raise ValidationFailed("Unknown view.", fields={"view": f"one of {', '.join(VIEWS)}"})
    if state not in STATES:
        raise ValidationFailed("Unknown state.", fields={"state": f"one of {', '.join(STATES)}"})
    qs = CallbackRequest.objects.filter(visibility_q(user, "conversation__"))
    if view == "mine":
        qs = qs.filter(Q(assignee=user) | Q(assignee__isnull=True, conversation__assignee=user))
    elif view == "team":
        qs = qs.filter(conversation__team_id__in=user.teams.values("id"))
    open_states = [CallbackStatus.SCHEDULED, CallbackStatus.MISSED]
    if state == "upcoming":
        qs = qs.filter(status__in=open_states).order_by("requested_for", "id")
    else:
        qs = qs.exclude(status__in=open_states).order_by("-requested_for", "-id")
    return qs.select_related("conversation", "conversation__customer", "conversation__team", "assignee")


def access_callback_for_user(user: Any, callback_id: int) -> CallbackRequest:
    check_perm(user, "conversations.view")
    callback = (
        CallbackRequest.objects.filter(pk=callback_id)
        .filter(visibility_q(user, "conversation__"))
        .select_related("conversation")
        .first()
    )
    if callback is None:
        raise NotFound("No such callback.")
    return callback


def public_callback_inbox(inbox_id: int):
    """An active callback inbox for the public booking page; 404 otherwise."""
    from ...models import ChannelKind, Inbox

    inbox = Inbox.objects.filter(pk=inbox_id, kind=ChannelKind.CALLBACK, is_active=True).first()
    if inbox is None:
        raise NotFound("No such callback form.")
    return inbox
