"""Call events from the CTI webhook: one `CallRecord` per call plus one call-log message on the
customer's phone conversation, kept up to date as the start, answer and end events arrive.

Events are idempotent per (inbox, call_id, event): a repeated event changes nothing. They may come
in any order (an "end" before its "answer", or with no "start" at all): the first event of a call
creates the record and the message; each later one fills in its part. The customer is the number on
the customer's side of the call (`from` of an inbound call, `to` of an outbound one), matched by its
E.164 form, and created when nobody has it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ecrm.core.consumers import publish
from ecrm.core.exceptions import ValidationFailed
from ecrm.core.models import User
from ecrm.customers.normalize import InvalidIdentifier, normalize_phone

from ...models import CallDirection, CallRecord, ChannelKind, Inbox, Message
from ..base import get_adapter
from .schemas import CallEventIn

EVENTS = ("start", "answer", "end")


@dataclass
class CallEventResult:
    status: Literal["created", "updated", "duplicate"]
    call: CallRecord
    message: Message


def _message_external_id(call_id: str) -> str:
    return f"call:{call_id}"


def _resolve_agent(inbox: Inbox, label: str) -> User | None:
    """The agent by username, or by extension through the inbox's map; None when unknown."""
    label = (label or "").strip()
    if not label:
        return None
    config = get_adapter(ChannelKind.PHONE).config(inbox)
    username = config.extensions.get(label, label)
    return User.objects.filter(username=username, is_active=True).first()


def _fmt_duration(seconds: int) -> str:
    minutes, secs = divmod(max(seconds, 0), 60)
    return _("%(m)d min %(s)02d s") % {"m": minutes, "s": secs}


def call_log_line(call: CallRecord, agent_label: str = "") -> str:
    """The readable line the agent sees in the thread and on the timeline."""
    inbound = call.direction == CallDirection.INBOUND
    parts = [
        (_("Inbound call from %(number)s") if inbound else _("Outbound call to %(number)s"))
        % {"number": call.customer_number}
    ]
    who = (call.agent.get_full_name() or call.agent.username) if call.agent else agent_label
    if call.answered_at:
        parts.append(_("answered by %(agent)s") % {"agent": who} if who else _("answered"))
    elif call.ended_at:
        parts.append(_("not answered") if inbound else _("no answer"))
    if call.ended_at and call.answered_at:
        parts.append(_fmt_duration(int((call.ended_at - call.answered_at).total_seconds())))
    elif not call.ended_at:
        parts.append(_("in progress"))
    if call.recording_url:
        parts.append(_("recording: %(url)s") % {"url": call.recording_url})
    return " · ".join(parts)


def _apply(call: CallRecord, event: CallEventIn, at: dt.datetime, agent: User | None) -> list[str]:
    """Fill in what this event says; returns the changed fields."""
    changed = []
    if event.started_at and event.started_at < call.started_at:
        call.started_at = event.started_at
        changed.append("started_at")
    if event.event == "start" and not event.started_at and at < call.started_at:
        call.started_at = at
        changed.append("started_at")
    if event.event == "answer":
        call.answered_at = at
        changed.append("answered_at")
    if event.event == "end":
        call.ended_at = at
        changed.append("ended_at")
    if event.recording_url and call.recording_url != str(event.recording_url):
        call.recording_url = str(event.recording_url)
        changed.append("recording_url")
    if agent is not None and call.agent_id is None:
        call.agent = agent
        changed.append("agent")
    return changed


def _give_to_answering_agent(call: CallRecord, event: CallEventIn, agent: User | None) -> None:
    """The agent who answered owns the follow-up of an unassigned phone conversation, through the one
    assignment seam; one who may not work on the conversation's team is not assigned (no error: the
    call is still logged)."""
    from ...models import Conversation
    from ...services import do_assign

    if event.event != "answer" or agent is None:
        return
    conversation = Conversation.objects.get(pk=call.conversation_id)
    if conversation.assignee_id is None:
        try:
            do_assign(conversation=conversation, actor=None, assignee=agent, reason="answered_call")
        except ValidationFailed:
            pass


def do_record_call_event(*, inbox: Inbox, event: CallEventIn) -> CallEventResult:
    """Store one CTI event (see the module docstring); ValidationFailed for a bad number."""
    from ...services import Inbound, conversation_group, receive_inbound

    if inbox.kind != ChannelKind.PHONE:
        raise ValidationFailed("Not a phone inbox.", fields={"inbox": "not a phone inbox"})
    side = "from" if event.direction == CallDirection.INBOUND else "to"
    raw_number = event.from_ if side == "from" else event.to
    try:
        number = normalize_phone(raw_number)
    except InvalidIdentifier as exc:
        raise ValidationFailed(str(exc), fields={side: "not a valid phone number"}) from exc
    now = timezone.now()
    at = min(event.timestamp or now, now)
    agent = _resolve_agent(inbox, event.agent)
    for attempt in range(2):
        try:
            with transaction.atomic():
                call = (
                    CallRecord.objects.select_for_update().filter(inbox=inbox, call_id=event.call_id).first()
                )
                if call is None:
                    call = CallRecord(
                        inbox=inbox, call_id=event.call_id, direction=event.direction, customer_number=number,
                        agent=agent, started_at=min(event.started_at or at, at),
                    )  # fmt: skip
                    _apply(call, event, at, agent)
                    meta = {"call": {"call_id": event.call_id, "direction": event.direction,
                                     "events": [event.event], "agent_label": event.agent}}  # fmt: skip
                    result = receive_inbound(
                        Inbound(
                            inbox=inbox,
                            identities=[("phone", number)],
                            body_text=call_log_line(call, event.agent),
                            external_id=_message_external_id(event.call_id),
                            thread_key=f"phone:{number}",  # a customer's calls collect in one thread
                            subject=_("Phone calls"),
                            sent_at=call.started_at,
                            metadata=meta,
                        )
                    )
                    call.conversation = result.conversation
                    call.save()  # unique (inbox, call_id): a racing first event fails here and retries
                    _give_to_answering_agent(call, event, agent)
                    return CallEventResult("created", call, result.message)
                message = Message.objects.get(inbox=inbox, external_id=_message_external_id(event.call_id))
                seen = list(message.metadata.get("call", {}).get("events", []))
                if event.event in seen:
                    return CallEventResult("duplicate", call, message)
                changed = _apply(call, event, at, agent)
                if changed:
                    call.save(update_fields=changed)
                _give_to_answering_agent(call, event, agent)
                label = message.metadata.get("call", {}).get("agent_label") or event.agent
                metadata: dict[str, Any] = {
                    **message.metadata,
                    "call": {**message.metadata.get("call", {}), "events": [*seen, event.event],
                             "agent_label": label},
                }  # fmt: skip
                Message.objects.filter(pk=message.pk).update(
                    body_text=call_log_line(call, label), metadata=metadata
                )
                message.refresh_from_db()
                payload = {
                    "type": "message.updated",
                    "conversation": call.conversation_id,
                    "message": message.pk,
                }
                group = conversation_group(call.conversation_id)
                transaction.on_commit(lambda group=group, payload=payload: publish(group, payload))
                return CallEventResult("updated", call, message)
        except IntegrityError:
            if attempt:
                raise
    raise AssertionError("unreachable")
