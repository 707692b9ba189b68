"""The batch solve end to end: decisions applied through conversations.do_assign and the ticket
service, the optimal policy beating first-come greedy, and capacity and skills never exceeded."""

from __future__ import annotations

import random

import pytest
from django.db.models import Count

from ecrm.conversations.models import Conversation
from ecrm.core.models import AuditLog
from ecrm.routing.models import Assignment, WorkItem, WorkStatus
from ecrm.routing.services import enqueue, route_once
from ecrm.service.models import Ticket

from . import factories as f

pytestmark = pytest.mark.django_db


def _waiting_conversations(texts: list[str], **kw) -> list[Conversation]:
    convs = [f.incoming(t, **kw) for t in texts]
    for c in convs:
        enqueue(kind="conversation", object_id=c.pk)
    return convs


def test_optimal_beats_first_come_greedy_and_goes_through_do_assign():
    """Two chats, two agents with one free chat slot each. The first chat (en) is best served by the
    bilingual agent, whom first-come greedy gives it to; then the zh chat has nobody. The batch solve
    gives the en chat to the en agent and the zh chat to the bilingual one: both served."""
    bilingual = f.agent("bilingual", skills={"lang:zh": 5, "lang:en": 5}, capacity={"chat": 1})
    english = f.agent("english", skills={"lang:en": 2}, capacity={"chat": 1})
    en_chat, zh_chat = _waiting_conversations(["Where is my parcel?", "我的包裹在哪里？"])
    result = route_once()
    assert (result.assigned, result.waiting, result.agents) == (2, 2, 2)
    assert Conversation.objects.get(pk=en_chat.pk).assignee_id == english.pk
    assert Conversation.objects.get(pk=zh_chat.pk).assignee_id == bilingual.pk
    # through the conversation service: its audit entry says routing did it
    reasons = AuditLog.objects.filter(action="conversation.assign").values_list("after__reason", flat=True)
    assert sorted(reasons) == ["routing", "routing"]
    assert not WorkItem.objects.filter(status=WorkStatus.WAITING).exists()


def test_round_robin_and_least_loaded_are_selectable():
    f.settings(policy="least_loaded")
    busy = f.agent("busy", teams=("Service EN",), skills={"lang:en": 5}, capacity={"ticket": 10})
    idle = f.agent("idle", teams=("Service EN",), skills={"lang:en": 1}, capacity={"ticket": 10})
    from ecrm.customers.models import Customer
    from ecrm.service.services import do_create_ticket

    cust = Customer.objects.create(display_name="E", locale="en")
    for i in range(3):
        t = do_create_ticket(
            actor=None, customer=cust, subject=f"old {i}", team=f.team("Service EN"), assignee=busy
        )
        enqueue(kind="ticket", object_id=t.pk)  # an assigned ticket counts as the agent's load
    new = do_create_ticket(actor=None, customer=cust, subject="new", team=f.team("Service EN"))
    enqueue(kind="ticket", object_id=new.pk)
    assert route_once().assigned == 1
    assert Ticket.objects.get(pk=new.pk).assignee_id == idle.pk
    assert (
        Assignment.objects.get(work_item__object_id=new.pk, work_item__kind="ticket").policy == "least_loaded"
    )


def test_capacity_skill_and_team_limits_hold_on_random_batches():
    rng = random.Random(7)
    langs = ["zh", "en"]
    agents = []
    for i in range(6):
        skills = {f"lang:{lang}": rng.randint(1, 5) for lang in langs if rng.random() < 0.7} or {"lang:en": 1}
        team_name = rng.choice(["Service CN", "Service EN"])
        agents.append(f.agent(f"r{i}", teams=(team_name,), skills=skills,
                              capacity={"chat": rng.randint(0, 3), "email": rng.randint(0, 2)}))  # fmt: skip
    for round_no in range(3):
        for j in range(10):
            kind = rng.choice(["chat", "email"])
            text = "你好" if rng.random() < 0.5 else "hello"
            c = f.incoming(
                f"{text} {round_no}-{j}", kind=kind, team_name=rng.choice(["Service CN", "Service EN"])
            )
            enqueue(kind="conversation", object_id=c.pk)
        route_once()
        profiles = {a.pk: a.routing_profile for a in agents}
        loads = (
            Assignment.objects.filter(ended_at__isnull=True)
            .values("agent_id", "channel")
            .annotate(n=Count("id"))
        )
        for row in loads:
            assert row["n"] <= profiles[row["agent_id"]].capacity.get(row["channel"], 0), row
        for asg in Assignment.objects.filter(ended_at__isnull=True).select_related("work_item", "agent"):
            item = asg.work_item
            for skill, level in item.skills.items():
                assert profiles[asg.agent_id].skills.get(skill, 0) >= level
            assert asg.agent.teams.filter(pk=item.team_id).exists()
            conv = Conversation.objects.get(pk=item.object_id)
            assert conv.assignee_id == asg.agent_id
    # nobody could take what is still waiting: each waiting item lacks a feasible agent with a free slot
    assert Assignment.objects.filter(ended_at__isnull=True).count() > 0


def test_offline_and_away_agents_get_nothing_and_disabled_routing_does_nothing():
    f.agent("away", skills={"lang:en": 5}, presence="away")
    f.agent("off", skills={"lang:en": 5}, presence="offline")
    _waiting_conversations(["hello"])
    assert route_once().assigned == 0
    on = f.agent("on", skills={"lang:en": 1})
    f.settings(enabled=False)
    assert route_once().assigned == 0
    f.settings(enabled=True)
    assert route_once().assigned == 1
    assert Assignment.objects.get().agent_id == on.pk


def test_urgent_item_wins_the_last_slot():
    f.agent("single", skills={"lang:en": 3}, capacity={"chat": 1})
    relaxed, urgent = _waiting_conversations(["hello 1", "hello 2"])
    import datetime as dt

    from django.utils import timezone

    WorkItem.objects.filter(object_id=urgent.pk).update(sla_due_at=timezone.now() - dt.timedelta(minutes=2))
    WorkItem.objects.filter(object_id=relaxed.pk).update(sla_due_at=timezone.now() + dt.timedelta(hours=2))
    assert route_once().assigned == 1
    assert Conversation.objects.get(pk=urgent.pk).assignee_id is not None
    assert Conversation.objects.get(pk=relaxed.pk).assignee_id is None
    asg = Assignment.objects.get()
    assert asg.details["sla_minutes"] < 0
    assert asg.factors["urgency"] > 0


def test_the_explained_load_matches_the_slot_the_engine_filled():
    agent = f.agent("slots", skills={"lang:en": 3}, capacity={"chat": 3})
    _waiting_conversations(["hello a", "hello b", "hello c"])
    assert route_once().assigned == 3
    loads = sorted(a.details["load"] for a in Assignment.objects.filter(agent=agent))
    assert loads == [1, 2, 3]
    for a in Assignment.objects.filter(agent=agent):
        assert f"{a.details['load']} of 3 chats" in a.reasons
        # the load factor is the free share before taking it: 1 - (load - 1) / 3, times the weight 1
        assert a.factors["load"] == pytest.approx(1 - (a.details["load"] - 1) / 3, abs=1e-5)
