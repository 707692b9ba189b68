"""The "notify a team" action: a stored notice for each active member and a live message to each."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from ecrm.core.models import User
from ecrm.service.services import do_create_ticket
from ecrm.workflows.models import Notification, RuleRun

from .factories import customer, rule, team_with


@pytest.fixture
def finance(cast):
    team = team_with("Finance", "agent_bob", "manager")
    inactive = User.objects.create(username="gone", role="agent", is_active=False)
    inactive.teams.add(team)
    return team


def test_each_active_member_gets_a_notice_and_a_live_message(
    cast, finance, django_capture_on_commit_callbacks
):
    rule(
        "Urgent to finance",
        conditions={"all": [{"field": "ticket.priority", "op": "eq", "value": "urgent"}]},
        actions=[
            {
                "type": "notify_team",
                "team": "Finance",
                "message": "Urgent: {{ ticket.reference }} {{ customer.name }}",
            }
        ],
    )
    buyer = customer()
    # listen on the members' live groups through the real (in-memory) channel layer
    layer = get_channel_layer()
    channels = {}
    for name in ("agent_bob", "manager", "agent_li"):
        channels[name] = async_to_sync(layer.new_channel)()
        async_to_sync(layer.group_add)(f"user.{cast[name].pk}", channels[name])
    with django_capture_on_commit_callbacks(execute=True):
        calm = do_create_ticket(actor=cast["agent_li"], customer=buyer, subject="Question")
        ticket = do_create_ticket(actor=cast["agent_li"], customer=buyer, subject="Broken", priority="urgent")
    notices = list(Notification.objects.order_by("user__username"))
    assert [(n.user.username, n.team.name, n.message) for n in notices] == [
        ("agent_bob", "Finance", f"Urgent: {ticket.reference} Wang Fang"),
        ("manager", "Finance", f"Urgent: {ticket.reference} Wang Fang"),
    ]
    assert {(n.subject_type, n.subject_id, n.url) for n in notices} == {
        ("ticket", ticket.pk, f"/service/{ticket.pk}/")
    }
    for name in ("agent_bob", "manager"):
        payload = async_to_sync(layer.receive)(channels[name])["payload"]
        assert payload["type"] == "workflows.notification"
        assert payload["message"] == f"Urgent: {ticket.reference} Wang Fang" and payload["team"] == "Finance"
    assert layer.channels.get(channels["agent_li"]) is None or layer.channels[channels["agent_li"]].empty()
    run = RuleRun.objects.get()
    assert (run.subject_id, run.status, run.actions[0]["result"]) == (
        ticket.pk,
        "done",
        "notified 2 member(s) of Finance",
    )
    assert calm.pk != ticket.pk


def test_nothing_happens_when_the_write_rolls_back(cast, finance, django_capture_on_commit_callbacks):
    from django.db import transaction

    rule("Any ticket", actions=[{"type": "notify_team", "team": "Finance", "message": "new"}])
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            do_create_ticket(actor=cast["agent_li"], customer=customer(), subject="x")
            raise RuntimeError("rolled back")
    assert callbacks == []
    assert Notification.objects.count() == 0 and RuleRun.objects.count() == 0
