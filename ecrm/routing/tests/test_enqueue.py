"""Work enters routing from the real services' events: a conversation, a ticket, a callback; the
item carries what routing needs (language, channel, team, SLA, value, affinity) and is routed."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from ecrm.conversations.models import Conversation
from ecrm.customers.models import Customer, CustomerTag, Tag
from ecrm.routing.models import Assignment, Queue, WorkItem, WorkStatus
from ecrm.routing.services import enqueue
from ecrm.service.models import Ticket
from ecrm.service.services import do_create_ticket, do_update_ticket

from . import factories as f

pytestmark = pytest.mark.django_db


def test_chinese_chat_is_enqueued_with_language_and_routed_to_the_chinese_speaker(
    django_capture_on_commit_callbacks,
):
    Queue.objects.create(
        name="CN chat", channels=["chat"], team=f.team("Service CN"), sla_minutes=5, priority=2
    )
    en = f.agent("en_only", skills={"lang:en": 5})
    zh = f.agent("zh_speaker", skills={"lang:zh": 4, "lang:en": 2}, first_name="Wei")
    with django_capture_on_commit_callbacks(execute=True):
        conv = f.incoming("你好，我的订单还没有到，请帮忙查一下物流。")
    item = WorkItem.objects.get(kind="conversation", object_id=conv.pk)
    assert (item.channel, item.skills, item.queue.name, item.priority) == (
        "chat",
        {"lang:zh": 1},
        "CN chat",
        20,
    )
    assert item.preferred == {"channel:chat": 3}
    assert item.sla_due_at == item.enqueued_at + dt.timedelta(minutes=5)
    assert item.status == WorkStatus.ASSIGNED
    conv.refresh_from_db()
    assert conv.assignee_id == zh.pk != en.pk
    asg = Assignment.objects.get(work_item=item)
    assert (asg.agent_id, asg.policy, asg.ended_at) == (zh.pk, "optimal", None)
    assert "speaks zh" in asg.reasons
    assert not any(
        r.startswith(f"{item.team_id} skill") for r in asg.reasons
    )  # team: a constraint, not a reason
    assert asg.details["skills"][0] == ["lang:zh", 4]
    assert (asg.details["load"], asg.details["capacity"], asg.details["channel"]) == (1, 3, "chat")


def test_enqueue_is_idempotent_and_customer_locale_beats_the_text(django_capture_on_commit_callbacks):
    cust = Customer.objects.create(display_name="Oliver", locale="en-GB")
    conv = f.incoming("你好", customer=cust)
    first = enqueue(kind="conversation", object_id=conv.pk)
    again = enqueue(kind="conversation", object_id=conv.pk)
    assert first.pk == again.pk and first.skills == {"lang:en": 1}
    assert WorkItem.objects.filter(kind="conversation", object_id=conv.pk).count() == 1


def test_vip_customer_and_affinity_are_carried(django_capture_on_commit_callbacks):
    cust = Customer.objects.create(display_name="Fang", locale="zh-CN")
    CustomerTag.objects.create(customer=cust, tag=Tag.objects.create(name="vip"))
    helper = f.agent("helper", skills={"lang:zh": 3})
    with django_capture_on_commit_callbacks(execute=True):
        first = f.incoming("第一次", customer=cust)
    assert Conversation.objects.get(pk=first.pk).assignee_id == helper.pk
    with django_capture_on_commit_callbacks(execute=True):
        second = f.incoming("第二次", customer=cust)
    item = WorkItem.objects.get(kind="conversation", object_id=second.pk)
    assert (item.value, item.value_label, item.last_agent_id) == (1.0, "vip", helper.pk)
    asg = Assignment.objects.get(work_item=item)
    assert asg.details["affinity"] is True and asg.details["value_label"] == "vip"
    assert "VIP customer" in asg.reasons and "helped this customer before" in asg.reasons


def test_ticket_is_enqueued_with_type_and_sla_and_assigned_through_the_ticket_service(
    django_capture_on_commit_callbacks,
):
    bob = f.agent("bobby", teams=("Service EN",), skills={"lang:en": 5, "type:complaint": 4})
    cust = Customer.objects.create(display_name="Emily", locale="en")
    with django_capture_on_commit_callbacks(execute=True):
        ticket = do_create_ticket(actor=None, customer=cust, subject="Broken teapot", type="complaint",
                                  priority="high", team=f.team("Service EN"))  # fmt: skip
    item = WorkItem.objects.get(kind="ticket", object_id=ticket.pk)
    ticket.refresh_from_db()
    assert (item.channel, item.skills, item.preferred) == ("ticket", {"lang:en": 1}, {"type:complaint": 3})
    assert item.priority == 2  # high, no queue
    assert item.sla_due_at == ticket.first_response_due
    assert ticket.assignee_id == bob.pk and ticket.status == "open"
    # solving the ticket completes the item and frees the slot
    with django_capture_on_commit_callbacks(execute=True):
        do_update_ticket(ticket=ticket, actor=bob, changes={"status": "solved"})
    item.refresh_from_db()
    asg = Assignment.objects.get(work_item=item)
    assert item.status == WorkStatus.DONE and asg.end_reason == "completed" and asg.ended_at is not None


def test_resolving_a_conversation_completes_it_and_a_new_message_requeues_it(
    django_capture_on_commit_callbacks,
):
    from ecrm.conversations.services import do_set_status

    li = f.agent("li2", skills={"lang:en": 3})
    with django_capture_on_commit_callbacks(execute=True):
        conv = f.incoming("hello there")
    with django_capture_on_commit_callbacks(execute=True):
        do_set_status(conversation=conv, actor=li, status="resolved")
    assert WorkItem.objects.get(kind="conversation", object_id=conv.pk).status == WorkStatus.DONE
    assert Assignment.objects.filter(ended_at__isnull=True).count() == 0


def test_manual_assignment_ends_routings_and_counts_as_load(django_capture_on_commit_callbacks):
    from ecrm.conversations.services import do_assign

    a = f.agent("routed", skills={"lang:en": 3})
    b = f.agent("taker", skills={"lang:en": 1}, presence="offline")
    with django_capture_on_commit_callbacks(execute=True):
        conv = f.incoming("hello")
    assert Conversation.objects.get(pk=conv.pk).assignee_id == a.pk
    with django_capture_on_commit_callbacks(execute=True):
        do_assign(conversation=conv, actor=b, assignee=b)
    rows = list(Assignment.objects.filter(work_item__object_id=conv.pk).order_by("id").values_list(
        "agent_id", "policy", "end_reason"))  # fmt: skip
    assert rows == [(a.pk, "optimal", "reassigned"), (b.pk, "manual", "")]


def test_callback_is_routed_when_it_is_due_not_before(django_capture_on_commit_callbacks):
    from ecrm.conversations.channels.callback.services import do_request_callback

    caller = f.agent("caller", skills={"lang:en": 3}, capacity={"phone": 1})
    box = f.inbox("callback", "Service CN")
    box.config = {"timezone": "UTC"}
    box.save()
    when = (timezone.now() + dt.timedelta(hours=3)).replace(second=0, microsecond=0)
    with django_capture_on_commit_callbacks(execute=True):
        cb = do_request_callback(inbox=box, phone="+8613800138000", requested_for=when, name="Li")
    item = WorkItem.objects.get(kind="callback", object_id=cb.pk)
    assert item.channel == "phone" and item.status == WorkStatus.WAITING
    assert item.enqueued_at == when - dt.timedelta(minutes=10)
    assert not WorkItem.objects.filter(kind="conversation", object_id=cb.conversation_id).exists()
    from ecrm.routing.services import route_once

    assert route_once().assigned == 0
    assert route_once(now=when).assigned == 1
    cb.refresh_from_db()
    assert cb.assignee_id == caller.pk


def test_a_ticket_nobody_can_take_waits(django_capture_on_commit_callbacks):
    f.agent("zh_only", teams=("Service EN",), skills={"lang:zh": 5})
    cust = Customer.objects.create(display_name="Lucas", locale="de")
    with django_capture_on_commit_callbacks(execute=True):
        ticket = do_create_ticket(actor=None, customer=cust, subject="Hallo", team=f.team("Service EN"))
    assert WorkItem.objects.get(kind="ticket", object_id=ticket.pk).status == WorkStatus.WAITING
    assert Ticket.objects.get(pk=ticket.pk).assignee_id is None


def test_a_waiting_ticket_moved_to_another_team_goes_to_that_team(django_capture_on_commit_callbacks, cast):
    en = f.agent("en_team", teams=("Service EN",), skills={"lang:en": 3}, presence="offline")
    cust = Customer.objects.create(display_name="Emily", locale="en")
    with django_capture_on_commit_callbacks(execute=True):
        ticket = do_create_ticket(actor=None, customer=cust, subject="Where?", team=f.team("Service CN"),
                                  priority="normal")  # fmt: skip
    item = WorkItem.objects.get(kind="ticket", object_id=ticket.pk)
    assert (item.team_id, item.status, item.priority) == (f.team("Service CN").pk, WorkStatus.WAITING, 1)
    from ecrm.routing.models import AgentProfile

    AgentProfile.objects.filter(user=en).update(presence="online")
    with django_capture_on_commit_callbacks(execute=True):
        do_update_ticket(ticket=ticket, actor=cast["manager"], changes={"team": f.team("Service EN"),
                                                                         "priority": "urgent"})  # fmt: skip
    item.refresh_from_db()
    assert (item.team_id, item.priority) == (f.team("Service EN").pk, 3)
    from ecrm.routing.services import route_once

    assert route_once().assigned == 1
    assert Ticket.objects.get(pk=ticket.pk).assignee_id == en.pk


def test_a_reopened_conversation_comes_back_into_routing(django_capture_on_commit_callbacks):
    from ecrm.conversations.services import Inbound, do_set_status, receive_inbound

    agent = f.agent("reopen", skills={"lang:en": 3})
    with django_capture_on_commit_callbacks(execute=True):
        conv = f.incoming("hello", email="again@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        do_set_status(conversation=conv, actor=agent, status="resolved")
    assert WorkItem.objects.get(object_id=conv.pk).status == WorkStatus.DONE
    with django_capture_on_commit_callbacks(execute=True):
        receive_inbound(Inbound(inbox=conv.inbox, identities=[("email", "again@example.com")], body_text="one more",
                                thread_key=conv.thread_key))  # fmt: skip
    items = list(WorkItem.objects.filter(object_id=conv.pk).order_by("id").values_list("status", flat=True))
    assert items == ["done", "assigned"]
    # it is still its agent's conversation: recorded as theirs, counting in their load
    assert Assignment.objects.filter(ended_at__isnull=True).get().agent_id == agent.pk
