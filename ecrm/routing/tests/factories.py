"""Builders for routing tests: agents with skills and capacity, and real conversations and tickets
made through the owning services (so the events routing listens to are the real ones)."""

from __future__ import annotations

import itertools

from django.utils import timezone

from ecrm.conversations.models import Inbox
from ecrm.conversations.services import Inbound, receive_inbound
from ecrm.core.models import Role, Team, User
from ecrm.customers.models import Customer
from ecrm.routing.models import AgentProfile, Presence, RoutingSettings

_seq = itertools.count(1)


def team(name: str) -> Team:
    return Team.objects.get_or_create(name=name)[0]


def agent(
    username: str | None = None,
    *,
    teams: tuple[str, ...] = ("Service CN",),
    skills: dict[str, int] | None = None,
    capacity: dict[str, int] | None = None,
    presence: str = Presence.ONLINE,
    first_name: str = "",
    role: str = Role.AGENT,
) -> User:
    username = username or f"agent{next(_seq)}"
    user = User.objects.create(username=username, role=role, first_name=first_name or username.title())
    for name in teams:
        user.teams.add(team(name))
    profile(user, skills=skills or {}, capacity=capacity, presence=presence)
    return user


def profile(user: User, *, skills=None, capacity=None, presence: str = Presence.ONLINE) -> AgentProfile:
    p, _ = AgentProfile.objects.update_or_create(
        user=user,
        defaults={
            "skills": skills or {},
            "capacity": capacity
            if capacity is not None
            else {"chat": 3, "email": 10, "ticket": 10, "phone": 1},
            "presence": presence,
            "last_activity_at": timezone.now(),
        },
    )
    return p


def inbox(kind: str = "chat", team_name: str | None = "Service CN") -> Inbox:
    t = team(team_name) if team_name else None
    return Inbox.objects.get_or_create(name=f"{kind} {team_name}", kind=kind, defaults={"team": t})[0]


def incoming(
    text: str = "Where is my order?",
    *,
    kind: str = "chat",
    team_name: str | None = "Service CN",
    email: str | None = None,
    customer: Customer | None = None,
):
    """A customer writes in on a new conversation; returns the conversation."""
    n = next(_seq)
    result = receive_inbound(
        Inbound(
            inbox=inbox(kind, team_name),
            identities=[("email", email or f"c{n}@example.com")],
            subject=text[:40],
            body_text=text,
            thread_key=f"t-{n}" if kind == "chat" else "",
            customer=customer,
        )
    )
    return result.conversation


def settings(**changes) -> RoutingSettings:
    s, _ = RoutingSettings.objects.get_or_create(pk=1)
    for k, v in changes.items():
        setattr(s, k, v)
    s.save()
    return s
