"""Two workers solving at the same moment on PostgreSQL: no item assigned twice, no agent over
capacity, every conversation's assignee is its one active assignment's agent."""

from __future__ import annotations

import random
import threading

import pytest
from django.db import connection, connections
from django.db.models import Count

from ecrm.conversations.models import Conversation
from ecrm.core import events
from ecrm.routing.models import Assignment, WorkItem, WorkStatus
from ecrm.routing.services import check_no_response, do_set_presence, enqueue, route_once

from . import factories as f

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL: SQLite serialises all writers, so there is no race to test",
    ),
]


def _run_together(*fns, rounds: int = 1):
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(fns))

    def runner(fn):
        try:
            for _ in range(rounds):
                barrier.wait(timeout=30)
                fn()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=runner, args=(fn,)) for fn in fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors


def _assert_invariants(agents):
    doubled = (
        Assignment.objects.filter(ended_at__isnull=True)
        .values("work_item")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    assert not doubled.exists()
    caps = {a.pk: a.routing_profile.capacity for a in agents}
    for row in (
        Assignment.objects.filter(ended_at__isnull=True).values("agent_id", "channel").annotate(n=Count("id"))
    ):
        assert row["n"] <= caps[row["agent_id"]].get(row["channel"], 0), row
    for asg in Assignment.objects.filter(ended_at__isnull=True).select_related("work_item"):
        assert Conversation.objects.get(pk=asg.work_item.object_id).assignee_id == asg.agent_id
    for item in WorkItem.objects.filter(status=WorkStatus.ASSIGNED):
        assert item.assignments.filter(ended_at__isnull=True).count() == 1


def test_two_workers_route_concurrently_without_double_assignment():
    rng = random.Random(3)
    agents = [
        f.agent(
            f"pg{i}",
            skills={"lang:en": rng.randint(1, 5), "lang:zh": rng.randint(1, 5)},
            capacity={"chat": rng.randint(1, 3), "email": rng.randint(1, 4)},
        )  # fmt: skip
        for i in range(8)
    ]
    with events.muted():  # no event-driven solve during setup: the two workers below do it all
        for i in range(60):
            conv = f.incoming(f"hello {i}" if i % 2 else f"你好 {i}", kind="chat" if i % 3 else "email")
            enqueue(kind="conversation", object_id=conv.pk)
    results = []
    _run_together(lambda: results.append(route_once()), lambda: results.append(route_once()))
    # both solved, one after the other (the lock made sure): the second saw exactly what the first left
    first, second = sorted(results, key=lambda r: -r.waiting)
    assert first.waiting == 60 and first.assigned > 0
    assert second.waiting == 60 - first.assigned
    assert sum(r.assigned for r in results) == Assignment.objects.filter(ended_at__isnull=True).count()
    capacity = sum(sum(a.routing_profile.capacity.values()) for a in agents)
    assert Assignment.objects.filter(ended_at__isnull=True).count() == min(60, capacity)
    _assert_invariants(agents)


def test_failover_and_solving_race_without_losing_or_doubling_items():
    agents = [f.agent(f"fo{i}", skills={"lang:en": 3}, capacity={"chat": 2}) for i in range(6)]
    with events.muted():
        for i in range(30):
            enqueue(kind="conversation", object_id=f.incoming(f"hello {i}").pk)
    route_once()
    # half the agents drop out while two workers solve and the no-reply check runs
    leaving = agents[:3]

    def drop():
        for a in leaving:
            do_set_presence(actor=a, user=a, presence="offline")

    import datetime as dt

    from django.utils import timezone

    later = timezone.now() + dt.timedelta(hours=1)
    _run_together(drop, lambda: route_once(), lambda: route_once(now=later), lambda: check_no_response(later),
                  rounds=3)  # fmt: skip
    route_once(now=later)
    _assert_invariants(agents)
    # nothing lost: every item is either assigned once or waiting
    assert WorkItem.objects.count() == 30
    assert not Assignment.objects.filter(ended_at__isnull=True, agent__in=leaving).exists()
