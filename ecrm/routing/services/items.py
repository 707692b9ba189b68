"""Work items: what waits for an agent. Enqueue derives everything routing needs from the owning
object (conversation, ticket, callback): channel, team, language and other skills, SLA due time,
customer value and the last agent who helped the customer; complete ends the item."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from ecrm.conversations.models import CallbackRequest, CallbackStatus, Conversation, ConversationStatus
from ecrm.customers.models import Customer
from ecrm.service.models import DONE_STATUSES, PRIORITY_ORDER, Ticket

from ..models import Assignment, EndReason, Queue, WorkItem, WorkKind, WorkStatus

# a conversation's channel -> the capacity it uses
CHANNEL_CAPACITY = {
    "chat": "chat", "social": "chat", "email": "email", "webform": "email", "phone": "phone", "callback": "phone",
}  # fmt: skip
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
# a callback is routed a little before the time the customer chose, so someone is free to call
CALLBACK_LEAD = dt.timedelta(minutes=10)
VALUE_OF_BAND = {"top": 0.8, "high": 0.6, "middle": 0.3, "low": 0.1}


@dataclass
class Facts:
    """What enqueue learned about an object."""

    channel: str
    team_id: int | None
    customer: Customer | None
    subject: str
    text: str  # for language detection when the customer has no locale
    preferred: dict[str, int]
    priority: int = 0
    sla_due_at: dt.datetime | None = None
    not_before: dt.datetime | None = None
    assignee_id: int | None = None
    done: bool = False


def _conversation_facts(conv: Conversation) -> Facts:
    first = (
        conv.messages.filter(direction="in").order_by("created_at", "id").values_list("body_text", flat=True)
    )
    channel = CHANNEL_CAPACITY.get(conv.channel, "email")
    return Facts(
        channel=channel,
        team_id=conv.team_id,
        customer=conv.customer,
        subject=conv.subject,
        text=(conv.subject or "") + " " + (first.first() or "")[:500],
        preferred={f"channel:{conv.channel}": 3},
        assignee_id=conv.assignee_id,
        done=conv.status == ConversationStatus.RESOLVED,
    )


def _ticket_facts(ticket: Ticket) -> Facts:
    preferred = {f"type:{ticket.type}": 3}
    due = ticket.first_response_due if ticket.first_response_at is None else ticket.resolution_due
    return Facts(
        channel="ticket",
        team_id=ticket.team_id,
        customer=ticket.customer,
        subject=f"{ticket.reference} {ticket.subject}",
        text=(ticket.subject or "") + " " + (ticket.description or "")[:500],
        preferred=preferred,
        priority=PRIORITY_ORDER.index(ticket.priority) if ticket.priority in PRIORITY_ORDER else 1,
        sla_due_at=due,
        assignee_id=ticket.assignee_id,
        done=ticket.status in DONE_STATUSES or ticket.merged_into_id is not None,
    )


def _callback_facts(callback: CallbackRequest) -> Facts:
    conv = callback.conversation
    return Facts(
        channel="phone",
        team_id=conv.team_id,
        customer=conv.customer,
        subject=str(callback),
        text=conv.subject or "",
        preferred={"channel:phone": 3},
        priority=1,
        sla_due_at=callback.requested_for,
        not_before=callback.requested_for - CALLBACK_LEAD,
        assignee_id=callback.assignee_id,
        done=callback.status not in (CallbackStatus.SCHEDULED, CallbackStatus.MISSED),
    )


def load_object(kind: str, object_id: int) -> Any:
    if kind == WorkKind.CONVERSATION:
        return Conversation.objects.select_related("customer").filter(pk=object_id).first()
    if kind == WorkKind.TICKET:
        return Ticket.objects.select_related("customer", "order").filter(pk=object_id).first()
    if kind == WorkKind.CALLBACK:
        return CallbackRequest.objects.select_related("conversation__customer").filter(pk=object_id).first()
    raise ValueError(f"unknown work kind {kind!r}")


def facts_of(kind: str, obj: Any) -> Facts:
    return {
        WorkKind.CONVERSATION: _conversation_facts,
        WorkKind.TICKET: _ticket_facts,
        WorkKind.CALLBACK: _callback_facts,
    }[kind](obj)


def language_of(customer: Customer | None, text: str) -> str:
    """The customer's locale ("zh-CN" -> "zh"); without one, Chinese characters in what they wrote
    mean zh, anything else en."""
    locale = (customer.locale if customer else "") or ""
    if locale:
        return locale.replace("_", "-").split("-")[0].lower()
    return "zh" if CJK.search(text or "") else "en"


def customer_value(customer: Customer | None) -> tuple[float, str]:
    """1.0 for a VIP (lifecycle stage or "vip" tag), else from the current CLV band when known."""
    if customer is None:
        return 0.0, ""
    if customer.lifecycle_stage == "vip" or customer.tags.filter(name__iexact="vip").exists():
        return 1.0, "vip"
    from ecrm.analytics.models import CustomerScore

    band = (
        CustomerScore.objects.filter(customer=customer, run__is_current=True)
        .exclude(clv_band="")
        .values_list("clv_band", flat=True)
        .first()
    )
    if band:
        return VALUE_OF_BAND.get(band, 0.0), band
    return 0.0, ""


def product_category(customer: Customer | None, ticket: Ticket | None = None) -> str:
    """The top category of the order in question (the ticket's, else the customer's latest)."""
    from ecrm.commerce.models import Order, OrderLine

    order = ticket.order if ticket is not None and ticket.order_id else None
    if order is None and customer is not None:
        order = Order.objects.filter(customer=customer).order_by("-placed_at", "-id").first()
    if order is None:
        return ""
    path = (
        OrderLine.objects.filter(order=order, product__isnull=False)
        .exclude(product__category_path="")
        .values_list("product__category_path", flat=True)
        .first()
    )
    if not path:
        return ""
    top = path.split("/")[0].strip().lower()
    return re.sub(r"[^a-z0-9_\-.]+", "-", top).strip("-")[:60]


def last_agent_of(customer: Customer | None) -> int | None:
    """Affinity: the agent of the customer's most recent assignment."""
    if customer is None:
        return None
    return (
        Assignment.objects.filter(work_item__customer_id=customer.pk)
        .order_by("-assigned_at", "-id")
        .values_list("agent_id", flat=True)
        .first()
    )


def pick_queue(channel: str, team_id: int | None) -> Queue | None:
    for queue in Queue.objects.filter(is_active=True).order_by("-priority", "id"):
        if queue.takes(channel, team_id):
            return queue
    return None


def enqueue(*, kind: str, object_id: int, now: dt.datetime | None = None) -> WorkItem | None:
    """Put a conversation, ticket or callback in its queue (idempotent: the open item if there is
    one). Returns None when the object is gone or done. An object that already has an assignee
    (assigned by hand or by the inbox's round-robin) becomes an assigned item, so it counts in load."""
    now = now or timezone.now()
    obj = load_object(kind, object_id)
    if obj is None:
        return None
    existing = WorkItem.objects.filter(kind=kind, object_id=object_id).exclude(status=WorkStatus.DONE).first()
    if existing is not None:
        return existing
    facts = facts_of(kind, obj)
    if facts.done:
        return None
    queue = pick_queue(facts.channel, facts.team_id)
    lang = language_of(facts.customer, facts.text)
    skills = {f"lang:{lang}": 1, **(queue.required_skills if queue else {})}
    preferred = dict(facts.preferred)
    category = product_category(facts.customer, obj if kind == WorkKind.TICKET else None)
    if category:
        preferred[f"cat:{category}"] = 3
    value, value_label = customer_value(facts.customer)
    sla_due = facts.sla_due_at
    if sla_due is None and queue is not None:
        sla_due = now + dt.timedelta(minutes=queue.sla_minutes)
    item = WorkItem(
        kind=kind,
        object_id=object_id,
        queue=queue,
        team_id=facts.team_id,
        customer_id=facts.customer.pk if facts.customer else None,
        channel=facts.channel,
        subject=(facts.subject or "")[:300],
        skills=skills,
        preferred=preferred,
        priority=(queue.priority if queue else 0) * 10 + facts.priority,
        value=value,
        value_label=value_label,
        enqueued_at=max(now, facts.not_before) if facts.not_before else now,
        sla_due_at=sla_due,
        last_agent_id=last_agent_of(facts.customer),
    )
    try:
        with transaction.atomic():
            item.save()
            if facts.assignee_id:
                _record_manual(item, facts.assignee_id, now)
    except IntegrityError:
        # the same event handled twice at once: the other worker stored it
        return WorkItem.objects.filter(kind=kind, object_id=object_id).exclude(status=WorkStatus.DONE).first()
    return item


def enqueue_for_object(obj: Any, now: dt.datetime | None = None) -> WorkItem | None:
    kind = {Conversation: WorkKind.CONVERSATION, Ticket: WorkKind.TICKET, CallbackRequest: WorkKind.CALLBACK}[
        type(obj)
    ]
    return enqueue(kind=kind, object_id=obj.pk, now=now)


def _record_manual(item: WorkItem, agent_id: int, now: dt.datetime) -> Assignment:
    item.status = WorkStatus.ASSIGNED
    item.save(update_fields=["status", "updated_at"])
    # assigned by a person: they took it on, so the no-reply timer does not apply
    return Assignment.objects.create(
        work_item=item,
        agent_id=agent_id,
        channel=item.channel,
        policy="manual",
        assigned_at=now,
        responded_at=now,
    )


def _open_item_locked(kind: str, object_id: int) -> WorkItem | None:
    """The object's open (not done) work item, row-locked; call inside transaction.atomic()."""
    return (
        WorkItem.objects.select_for_update()
        .filter(kind=kind, object_id=object_id)
        .exclude(status=WorkStatus.DONE)
        .first()
    )


def sync_manual_assignment(*, kind: str, object_id: int) -> WorkItem | None:
    """The owning object's assignee changed outside routing (a manager handed it over, an agent took
    it, a rule assigned it): end routing's assignment and record the new holder, or put the item
    back in the queue when it was unassigned. Reads the object's assignee now, not the event's, so
    a late event never undoes a newer assignment."""
    now = timezone.now()
    with transaction.atomic():
        obj = load_object(kind, object_id)
        if obj is None:
            return None
        assignee_id = facts_of(kind, obj).assignee_id
        item = _open_item_locked(kind, object_id)
        if item is None:
            return None
        active = Assignment.objects.filter(work_item=item, ended_at__isnull=True).first()
        if active is not None and active.agent_id == assignee_id:
            return item  # routing's own change coming back as an event
        if active is None and assignee_id is None:
            return item  # routing took it back (requeue); it is waiting already
        if active is not None:
            active.ended_at = now
            active.end_reason = EndReason.REASSIGNED
            active.save(update_fields=["ended_at", "end_reason"])
        if assignee_id:
            _record_manual(item, assignee_id, now)
        else:
            item.status = WorkStatus.WAITING
            item.save(update_fields=["status", "updated_at"])
    return item


def refresh_item(*, kind: str, object_id: int, now: dt.datetime | None = None) -> WorkItem | None:
    """The object changed while its item is open (moved to another team, priority or type changed):
    recompute team, queue, priority, SLA due time and preferred skills, so the next solve looks for
    the right people."""
    now = now or timezone.now()
    obj = load_object(kind, object_id)
    if obj is None:
        return None
    facts = facts_of(kind, obj)
    with transaction.atomic():
        item = _open_item_locked(kind, object_id)
        if item is None:
            return None
        queue = pick_queue(facts.channel, facts.team_id)
        lang = next((k for k in item.skills if k.startswith("lang:")), None)
        skills = {**({lang: item.skills[lang]} if lang else {}), **(queue.required_skills if queue else {})}
        preferred = {k: v for k, v in item.preferred.items() if k.startswith("cat:")} | facts.preferred
        sla_due = facts.sla_due_at
        if sla_due is None:
            sla_due = item.sla_due_at if item.queue_id == (queue.pk if queue else None) else (
                item.enqueued_at + dt.timedelta(minutes=queue.sla_minutes) if queue else None
            )  # fmt: skip
        item.team_id = facts.team_id
        item.queue = queue
        item.skills = skills
        item.preferred = preferred
        item.priority = (queue.priority if queue else 0) * 10 + facts.priority
        item.sla_due_at = sla_due
        item.save(
            update_fields=["team", "queue", "skills", "preferred", "priority", "sla_due_at", "updated_at"]
        )
    return item


def complete(*, kind: str, object_id: int, now: dt.datetime | None = None) -> WorkItem | None:
    """The conversation was resolved, the ticket solved or closed, the callback made: the item is done
    and its assignment ends as completed (the agent's slot frees up)."""
    now = now or timezone.now()
    with transaction.atomic():
        item = _open_item_locked(kind, object_id)
        if item is None:
            return None
        Assignment.objects.filter(work_item=item, ended_at__isnull=True).update(
            ended_at=now, end_reason=EndReason.COMPLETED
        )
        item.status = WorkStatus.DONE
        item.done_at = now
        item.save(update_fields=["status", "done_at", "updated_at"])
    return item
