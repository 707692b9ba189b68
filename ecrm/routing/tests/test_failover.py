"""Failover: an agent going offline (by choice or idleness) hands back unanswered work, which is
reassigned; an assignment with no reply in time goes to someone else; nothing is lost or doubled."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from ecrm.conversations.models import Conversation
from ecrm.conversations.services import do_send_reply
from ecrm.routing.models import AgentProfile, Assignment, WorkItem, WorkStatus
from ecrm.routing.services import (
    check_idle_agents,
    check_no_response,
    do_set_presence,
    enqueue,
    route_once,
    tick,
)

from . import factories as f

pytestmark = pytest.mark.django_db


def _assert_invariants():
    """Every open item has at most one active assignment; assigned items exactly one."""
    for item in WorkItem.objects.exclude(status=WorkStatus.DONE):
        active = item.assignments.filter(ended_at__isnull=True).count()
        assert active == (1 if item.status == WorkStatus.ASSIGNED else 0), (item, active)


def test_agent_going_offline_hands_back_unanswered_work_which_is_reassigned(
    django_capture_on_commit_callbacks,
):
    first = f.agent("first", skills={"lang:en": 5}, capacity={"chat": 3})
    with django_capture_on_commit_callbacks(execute=True):
        answered = f.incoming("hello 1")
        unanswered = f.incoming("hello 2")
    assert Conversation.objects.filter(assignee=first).count() == 2
    with django_capture_on_commit_callbacks(execute=True):
        do_send_reply(conversation=answered, actor=first, body_text="Hi, looking into it")
    assert Assignment.objects.get(work_item__object_id=answered.pk).responded_at is not None
    second = f.agent("second", skills={"lang:en": 1}, capacity={"chat": 3})
    with django_capture_on_commit_callbacks(execute=True):
        do_set_presence(actor=first, user=first, presence="offline")
    # the unanswered one moved to the other agent; the answered one stays with its agent
    assert Conversation.objects.get(pk=unanswered.pk).assignee_id == second.pk
    assert Conversation.objects.get(pk=answered.pk).assignee_id == first.pk
    history = list(
        Assignment.objects.filter(work_item__object_id=unanswered.pk, work_item__kind="conversation")
        .order_by("id")
        .values_list("agent_id", "end_reason")
    )
    assert history == [(first.pk, "offline"), (second.pk, "")]
    assert WorkItem.objects.get(kind="conversation", object_id=unanswered.pk).requeue_count == 1
    _assert_invariants()


def test_offline_with_nobody_else_leaves_the_item_waiting_and_unassigned(django_capture_on_commit_callbacks):
    only = f.agent("only", skills={"lang:en": 5})
    with django_capture_on_commit_callbacks(execute=True):
        conv = f.incoming("hello")
        do_set_presence(actor=only, user=only, presence="offline")
    item = WorkItem.objects.get(kind="conversation", object_id=conv.pk)
    assert item.status == WorkStatus.WAITING
    assert Conversation.objects.get(pk=conv.pk).assignee_id is None
    _assert_invariants()
    # back online: it comes back
    with django_capture_on_commit_callbacks(execute=True):
        do_set_presence(actor=only, user=only, presence="online")
    assert Conversation.objects.get(pk=conv.pk).assignee_id == only.pk


def test_no_reply_in_time_requeues_to_someone_else(django_capture_on_commit_callbacks):
    f.settings(no_response_minutes=5)
    slow = f.agent("slow", skills={"lang:en": 5})
    other = f.agent("other", skills={"lang:en": 1}, presence="offline")
    with django_capture_on_commit_callbacks(execute=True):
        conv = f.incoming("hello")
    assert Conversation.objects.get(pk=conv.pk).assignee_id == slow.pk
    AgentProfile.objects.filter(user=other).update(presence="online")
    now = timezone.now()
    assert check_no_response(now + dt.timedelta(minutes=4)) == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert check_no_response(now + dt.timedelta(minutes=6)) == 1
    route_once()
    # the better-skilled but silent agent is skipped this time
    assert Conversation.objects.get(pk=conv.pk).assignee_id == other.pk
    rows = list(Assignment.objects.order_by("id").values_list("agent_id", "end_reason"))
    assert rows == [(slow.pk, "no_response"), (other.pk, "")]
    item = WorkItem.objects.get()
    assert item.excluded_agents == [] and item.requeue_count == 1
    _assert_invariants()


def test_a_reply_in_time_stops_the_clock(django_capture_on_commit_callbacks):
    f.settings(no_response_minutes=5)
    quick = f.agent("quick", skills={"lang:en": 5})
    with django_capture_on_commit_callbacks(execute=True):
        conv = f.incoming("hello")
        do_send_reply(conversation=conv, actor=quick, body_text="On it")
    assert check_no_response(timezone.now() + dt.timedelta(hours=1)) == 0
    assert Conversation.objects.get(pk=conv.pk).assignee_id == quick.pk


def test_idle_agent_goes_away_then_offline_and_activity_brings_them_back(django_capture_on_commit_callbacks):
    from ecrm.routing.services import touch_activity

    f.settings(idle_away_minutes=10, idle_offline_minutes=30)
    idle = f.agent("idle", skills={"lang:en": 5})
    with django_capture_on_commit_callbacks(execute=True):
        conv = f.incoming("hello")
    start = timezone.now()
    AgentProfile.objects.filter(user=idle).update(last_activity_at=start)
    assert check_idle_agents(start + dt.timedelta(minutes=5)) == 0
    assert check_idle_agents(start + dt.timedelta(minutes=11)) == 1
    profile = AgentProfile.objects.get(user=idle)
    assert (profile.presence, profile.presence_source) == ("away", "idle")
    assert Conversation.objects.get(pk=conv.pk).assignee_id == idle.pk  # away keeps work, gets no new
    touch_activity(idle.pk)
    assert AgentProfile.objects.get(user=idle).presence == "online"
    AgentProfile.objects.filter(user=idle).update(last_activity_at=start)
    with django_capture_on_commit_callbacks(execute=True):
        assert check_idle_agents(start + dt.timedelta(minutes=31)) == 1
    assert AgentProfile.objects.get(user=idle).presence == "offline"
    assert Conversation.objects.get(pk=conv.pk).assignee_id is None
    assert WorkItem.objects.get().status == WorkStatus.WAITING
    # an agent who chose "away" is not brought back by activity
    with django_capture_on_commit_callbacks(execute=True):
        do_set_presence(actor=idle, user=idle, presence="away")
    touch_activity(idle.pk)
    assert AgentProfile.objects.get(user=idle).presence == "away"


def test_tick_completes_items_whose_object_finished_without_an_event():
    done_agent = f.agent("done", skills={"lang:en": 5})
    conv = f.incoming("hello")
    enqueue(kind="conversation", object_id=conv.pk)
    route_once()
    Conversation.objects.filter(pk=conv.pk).update(status="resolved")  # e.g. an event lost in a crash
    tick()
    item = WorkItem.objects.get()
    assert item.status == WorkStatus.DONE
    assert Assignment.objects.get().end_reason == "completed"
    assert done_agent.pk == Assignment.objects.get().agent_id


def test_presence_permissions():
    from ecrm.core.exceptions import PermissionDenied, ValidationFailed

    a = f.agent("a1", skills={"lang:en": 1})
    b = f.agent("b1", skills={"lang:en": 1})
    with pytest.raises(PermissionDenied):
        do_set_presence(actor=a, user=b, presence="offline")
    assert AgentProfile.objects.get(user=b).presence == "online"
    with pytest.raises(ValidationFailed):
        do_set_presence(actor=a, user=a, presence="sleeping")
    manager = f.agent("m1", role="manager")
    do_set_presence(actor=manager, user=b, presence="away")
    assert AgentProfile.objects.get(user=b).presence_source == "manager"


def test_the_periodic_tick_solves_and_schedules_solves_every_15_seconds():
    from ecrm.core.tasks import HUEY
    from ecrm.routing.tasks import routing_tick

    f.agent("ticker", skills={"lang:en": 5}, capacity={"chat": 1})
    first = f.incoming("hello")
    enqueue(kind="conversation", object_id=first.pk)
    before = HUEY.scheduled_count()
    assert routing_tick.call_local() == 1
    assert WorkItem.objects.get().status == WorkStatus.ASSIGNED
    assert HUEY.scheduled_count() == before  # nothing waits: no extra solves
    enqueue(kind="conversation", object_id=f.incoming("hello again").pk)  # no free slot: it waits
    assert routing_tick.call_local() == 0
    assert HUEY.scheduled_count() - before == 3


def test_first_presence_creates_a_profile_with_the_console_language_as_a_skill():
    from ecrm.core.models import User

    newcomer = User.objects.create(username="newcomer", role="agent", language="zh-hans")
    do_set_presence(actor=newcomer, user=newcomer, presence="online")
    p = AgentProfile.objects.get(user=newcomer)
    assert (p.presence, p.skills, p.capacity["chat"]) == ("online", {"lang:zh": 3}, 3)


def test_a_second_reply_soon_after_writes_no_routing_bookkeeping(django_capture_on_commit_callbacks):
    """Activity and "responded" are written once; later replies only read (on SQLite even an UPDATE
    that matches nothing would take the database's write lock from the chat and the other agents)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    f.settings(no_response_minutes=5)
    agent = f.agent("quick", skills={"lang:en": 5})
    with django_capture_on_commit_callbacks(execute=True):
        conv = f.incoming("hello")
        do_send_reply(conversation=conv, actor=agent, body_text="On it")
    assert Assignment.objects.get(agent=agent).responded_at is not None
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=True):
        do_send_reply(conversation=conv, actor=agent, body_text="Still on it")
    routing_writes = [
        q["sql"] for q in queries.captured_queries
        if q["sql"].startswith("UPDATE") and ("routing_agentprofile" in q["sql"] or "routing_assignment" in q["sql"])
    ]  # fmt: skip
    assert routing_writes == []
