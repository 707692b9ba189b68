"""Demo routing setup for `make run`: the demo agents' skills and capacities, a few queues, and the
open demo conversations and tickets enqueued and routed once, so the dashboard and the explanation
panels have something to show. Idempotent: profiles and queues are updated in place."""

from __future__ import annotations

from django.db import transaction

from ecrm.conversations.models import CallbackRequest, Conversation
from ecrm.core.demo import ensure_demo_users
from ecrm.core.models import Team
from ecrm.service.models import OPEN_STATUSES, Ticket

from .models import AgentProfile, Presence, Queue, WorkItem

SKILLS = {
    # username: (skills, capacity, presence)
    "agent_li": (
        {"lang:zh": 5, "lang:en": 3, "cat:food": 4, "cat:home": 3, "type:complaint": 4, "type:return_refund": 3,
         "channel:chat": 4},
        {"chat": 3, "email": 10, "ticket": 10, "phone": 1},
        Presence.ONLINE,
    ),
    "agent_bob": (
        {"lang:en": 5, "cat:electronics": 4, "cat:fashion": 3, "type:delivery_problem": 4, "type:technical": 4,
         "channel:email": 4},
        {"chat": 2, "email": 12, "ticket": 8, "phone": 1},
        Presence.ONLINE,
    ),
    "manager": (
        {"lang:zh": 5, "lang:en": 4, "type:complaint": 5},
        {"chat": 1, "email": 3, "ticket": 5, "phone": 1},
        Presence.AWAY,
    ),
}  # fmt: skip

QUEUES = [
    # name, priority, team, channels, sla minutes
    ("Callbacks", 4, None, ["phone"], 15),
    ("Chat CN", 3, "Service CN", ["chat"], 3),
    ("Chat EN", 3, "Service EN", ["chat"], 3),
    ("Email", 1, None, ["email"], 240),
    ("Tickets", 2, None, ["ticket"], 480),
]


@transaction.atomic
def seed_routing() -> dict[str, int]:
    users = {u.username: u for u in ensure_demo_users()}
    for username, (skills, capacity, presence) in SKILLS.items():
        AgentProfile.objects.update_or_create(
            user=users[username], defaults={"skills": skills, "capacity": capacity, "presence": presence}
        )
    for name, priority, team_name, channels, sla in QUEUES:
        team = Team.objects.filter(name=team_name).first() if team_name else None
        Queue.objects.update_or_create(
            name=name, defaults={"priority": priority, "team": team, "channels": channels, "sla_minutes": sla}
        )
    return {"profiles": len(SKILLS), "queues": len(QUEUES), **enqueue_open_work()}


def enqueue_open_work() -> dict[str, int]:
    """Enqueue what is open and not yet in routing, then solve once."""
    from .services import enqueue, route_once

    before = WorkItem.objects.count()
    callback_conversations = set(CallbackRequest.objects.values_list("conversation_id", flat=True))
    for conv_id in Conversation.objects.filter(status="open").order_by("id").values_list("pk", flat=True):
        if conv_id not in callback_conversations:
            enqueue(kind="conversation", object_id=conv_id)
    for ticket_id in (
        Ticket.objects.filter(status__in=OPEN_STATUSES).order_by("id").values_list("pk", flat=True)
    ):
        enqueue(kind="ticket", object_id=ticket_id)
    for cb_id in CallbackRequest.objects.filter(status__in=("scheduled", "missed")).values_list(
        "pk", flat=True
    ):
        enqueue(kind="callback", object_id=cb_id)
    result = route_once()
    return {"work_items": WorkItem.objects.count() - before, "routed": result.assigned}
