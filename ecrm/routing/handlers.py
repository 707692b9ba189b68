"""Domain events routing listens to (subscribed in apps.ready). Handlers are quick: the real work
(enqueue, solve) is a background job, so the request that caused the event stays fast."""

from __future__ import annotations

from ecrm.core import events
from ecrm.core.events import Event

from .models import WorkItem, WorkKind, WorkStatus


def _new_value(event: Event, key: str):
    change = (event.data.get("changes") or {}).get(key)
    return change[1] if isinstance(change, list | tuple) and len(change) == 2 else None


def _callback_of(conversation_id: int | None) -> int | None:
    from ecrm.conversations.models import CallbackRequest

    if conversation_id is None:
        return None
    return (
        CallbackRequest.objects.filter(conversation_id=conversation_id).values_list("pk", flat=True).first()
    )


def on_conversation_event(event: Event) -> None:
    from ecrm.conversations.models import Conversation

    from . import tasks
    from .services import mark_responded, refresh_item, sync_manual_assignment, touch_activity

    conv_id = event.subject_id
    if conv_id is None:
        return
    if event.name == "conversation.created":
        # a callback's conversation is routed as the callback (callback.requested), not twice
        if event.data.get("channel") != "callback":
            tasks.enqueue_task(WorkKind.CONVERSATION, conv_id)
    elif event.name == "message.received":
        if (
            event.data.get("new_conversation")
            or event.data.get("channel") == "callback"
            or event.data.get("auto")
        ):
            return
        # a customer writing again on a conversation routing does not hold (reopened, or from before
        # routing) puts it in: unassigned it waits for an agent; assigned it counts in its holder's load
        if (
            Conversation.objects.filter(pk=conv_id, status="open").exists()
            and not WorkItem.objects.filter(kind=WorkKind.CONVERSATION, object_id=conv_id)
            .exclude(status=WorkStatus.DONE)
            .exists()
        ):
            tasks.enqueue_task(WorkKind.CONVERSATION, conv_id)
    elif event.name == "message.sent":
        author = event.data.get("author")
        if author:
            touch_activity(author)
            mark_responded(kind=WorkKind.CONVERSATION, object_id=conv_id, agent_id=author)
            callback_id = _callback_of(conv_id)
            if callback_id:
                mark_responded(kind=WorkKind.CALLBACK, object_id=callback_id, agent_id=author)
    elif event.name == "conversation.status_changed":
        if _new_value(event, "status") == "resolved":
            tasks.complete_task(WorkKind.CONVERSATION, conv_id)
    elif event.name == "conversation.assigned":
        if str(event.data.get("reason", "")).startswith("routing"):
            return  # routing's own assignment
        if event.actor_id:
            touch_activity(event.actor_id)
        if "team" in (event.data.get("changes") or {}):
            refresh_item(kind=WorkKind.CONVERSATION, object_id=conv_id)
        sync_manual_assignment(kind=WorkKind.CONVERSATION, object_id=conv_id)
        callback_id = _callback_of(conv_id)
        if callback_id:
            sync_manual_assignment(kind=WorkKind.CALLBACK, object_id=callback_id)


def on_ticket_event(event: Event) -> None:
    from . import tasks
    from .services import mark_responded, refresh_item, sync_manual_assignment, touch_activity

    ticket_id = event.subject_id
    if ticket_id is None:
        return
    if event.name == "ticket.created":
        tasks.enqueue_task(WorkKind.TICKET, ticket_id)
    elif event.name == "ticket.status_changed":
        if _new_value(event, "status") in ("solved", "closed"):
            tasks.complete_task(WorkKind.TICKET, ticket_id)
    elif event.name == "ticket.comment_added":
        author = event.data.get("author")
        if author and not event.data.get("by_customer"):
            touch_activity(author)
            if event.data.get("public"):
                mark_responded(kind=WorkKind.TICKET, object_id=ticket_id, agent_id=author)
    elif event.name == "ticket.updated":
        if event.actor_id:
            touch_activity(event.actor_id)
            # the holder working on the ticket (status, fields) counts as a reply
            mark_responded(kind=WorkKind.TICKET, object_id=ticket_id, agent_id=event.actor_id)
        changed = event.data.get("changes") or {}
        if {"team_id", "priority", "type", "first_response_due", "resolution_due"} & set(changed):
            refresh_item(kind=WorkKind.TICKET, object_id=ticket_id)
        if "assignee_id" in changed:
            sync_manual_assignment(kind=WorkKind.TICKET, object_id=ticket_id)


def on_callback_requested(event: Event) -> None:
    from . import tasks

    if event.subject_id is not None:
        tasks.enqueue_task(WorkKind.CALLBACK, event.subject_id)


def subscribe_all() -> None:
    events.subscribe(
        on_conversation_event,
        names=("conversation.created", "conversation.status_changed", "conversation.assigned",
               "message.received", "message.sent"),
    )  # fmt: skip
    events.subscribe(
        on_ticket_event,
        names=("ticket.created", "ticket.status_changed", "ticket.comment_added", "ticket.updated"),
    )
    events.subscribe(on_callback_requested, names=("callback.requested",))
