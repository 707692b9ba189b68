"""Callback requests: booking one (public form and API), reminding the agent, recording the outcome.

A request is a conversation on a callback inbox (through `receive_inbound`, so it lands on the
customer's profile and timeline) plus a `CallbackRequest` row: the scheduled task. It is assigned by
the inbox's round-robin like any conversation (`auto_assign`, the one assignment seam), and the
callback follows its conversation's assignee until someone records the outcome.
"""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ecrm.core import events
from ecrm.core.audit import record_audit
from ecrm.core.consumers import publish
from ecrm.core.exceptions import Conflict, ValidationFailed
from ecrm.core.models import User
from ecrm.core.permissions import check_perm
from ecrm.customers.models import Customer
from ecrm.customers.normalize import InvalidIdentifier, normalize_email, normalize_phone

from ...models import CallbackRequest, CallbackStatus, ChannelKind, Inbox
from ..base import get_adapter

REMINDER_LEAD = dt.timedelta(minutes=10)
# A reminder for a call due long ago helps nobody: the periodic task skips what it missed by this much
# (a worker that was down); the callback still shows as overdue on the list.
REMINDER_STALE = dt.timedelta(hours=2)
OUTCOMES = (CallbackStatus.DONE, CallbackStatus.MISSED, CallbackStatus.CANCELLED)


def callback_config(inbox: Inbox):
    return get_adapter(ChannelKind.CALLBACK).config(inbox)


def check_requested_time(
    inbox: Inbox, when: dt.datetime | None, *, now: dt.datetime | None = None
) -> dt.datetime:
    """The aware time of the call, or ValidationFailed on `requested_for`: in the future (with the
    inbox's notice), within its booking window (30 days at most), and within its hours if set.
    A time without a zone is read in the inbox's time zone (what the customer saw on the form)."""
    config = callback_config(inbox)
    tz = zoneinfo.ZoneInfo(config.timezone)
    if when is None:
        raise ValidationFailed(_("Choose when we should call."), fields={"requested_for": _("required")})
    if timezone.is_naive(when):
        when = when.replace(tzinfo=tz)
    now = now or timezone.now()
    earliest = now + dt.timedelta(minutes=config.min_notice_minutes)
    if when < earliest:
        msg = _("Choose a time in the future, at least %(n)s minutes from now.") % {
            "n": config.min_notice_minutes
        }
        raise ValidationFailed(msg, fields={"requested_for": msg})
    if when > now + dt.timedelta(days=config.max_days_ahead):
        msg = _("Choose a time within the next %(n)s days.") % {"n": config.max_days_ahead}
        raise ValidationFailed(msg, fields={"requested_for": msg})
    local = when.astimezone(tz)
    if config.opens is not None and config.closes is not None:
        if local.weekday() not in config.days or not (config.opens <= local.time() < config.closes):
            msg = _(
                "We call between %(opens)s and %(closes)s on working days; please choose a time then."
            ) % {
                "opens": config.opens.strftime("%H:%M"),
                "closes": config.closes.strftime("%H:%M"),
            }
            raise ValidationFailed(msg, fields={"requested_for": msg})
    return when


@dataclass
class CallbackData:
    """A checked booking: the E.164 phone, identities, aware time, name and note."""

    phone: str
    identities: list[tuple[str, str]]
    requested_for: dt.datetime
    name: str
    note: str


def check_callback_request(
    *,
    inbox: Inbox,
    phone: str,
    requested_for: dt.datetime | None,
    name: str = "",
    email: str = "",
    note: str = "",
) -> CallbackData:
    """Every problem with a booking at once (ValidationFailed by field), or the cleaned values."""
    if inbox.kind != ChannelKind.CALLBACK or not inbox.is_active:
        raise ValidationFailed(
            _("This is not an open callback inbox."), fields={"inbox": "not a callback inbox"}
        )
    errors: dict[str, str] = {}
    identities: list[tuple[str, str]] = []
    try:
        e164 = normalize_phone(phone or "")
        identities.append(("phone", e164))
    except InvalidIdentifier:
        e164 = ""
        errors["phone"] = (
            _("Enter a valid phone number.") if (phone or "").strip() else _("This field is required.")
        )
    if (email or "").strip():
        try:
            identities.append(("email", normalize_email(email)))
        except InvalidIdentifier:
            errors["email"] = _("Enter a valid email address.")
    name, note = " ".join((name or "").split()), (note or "").strip()
    if len(name) > 100:
        errors["name"] = _("At most %(n)s characters.") % {"n": 100}
    if len(note) > 2000:
        errors["note"] = _("At most %(n)s characters.") % {"n": 2000}
    when = None
    try:
        when = check_requested_time(inbox, requested_for)
    except ValidationFailed as exc:
        errors.update(exc.fields)
    if errors or when is None:
        raise ValidationFailed(_("Please correct the marked fields."), fields=errors)
    return CallbackData(phone=e164, identities=identities, requested_for=when, name=name, note=note)


def do_request_callback(
    *,
    inbox: Inbox,
    phone: str,
    requested_for: dt.datetime | None,
    name: str = "",
    email: str = "",
    note: str = "",
    customer: Customer | None = None,
    source: str = "form",
) -> CallbackRequest:
    """Book a call for a customer (anonymous: found or created by the phone and email)."""
    data = check_callback_request(
        inbox=inbox, phone=phone, requested_for=requested_for, name=name, email=email, note=note
    )
    e164, identities, when, name, note = data.phone, data.identities, data.requested_for, data.name, data.note
    from ...services import Inbound, receive_inbound

    tz = zoneinfo.ZoneInfo(callback_config(inbox).timezone)
    local = when.astimezone(tz)
    body = _("Please call me back on %(phone)s at %(when)s (%(tz)s).") % {
        "phone": e164, "when": local.strftime("%Y-%m-%d %H:%M"), "tz": tz.key,
    }  # fmt: skip
    if note:
        body += "\n" + note
    with transaction.atomic():
        result = receive_inbound(
            Inbound(
                inbox=inbox,
                identities=identities,
                subject=_("Callback request"),
                body_text=body,
                # every request is its own conversation: the callback row hangs off it one-to-one
                thread_key=f"callback:{uuid.uuid4().hex}",
                traits={"first_name": name} if name else {},
                customer=customer,
                metadata={"callback": {"phone": e164, "requested_for": when.isoformat(), "source": source}},
            )
        )
        callback = CallbackRequest.objects.create(
            conversation=result.conversation,
            phone=e164,
            requested_for=when,
            assignee_id=result.conversation.assignee_id,
        )
        record_audit(actor=None, action="callback.request", obj=callback,
                     after={"requested_for": when.isoformat(), "source": source})  # fmt: skip
        events.emit(
            "callback.requested",
            subject_type="callback",
            subject_id=callback.pk,
            data={"phone": e164, "customer": result.conversation.customer_id, "requested_for": when.isoformat(),
                  "conversation": result.conversation.pk},
        )  # fmt: skip
        # receive_inbound queued the round-robin after commit; ours runs after it and copies its choice
        callback_id = callback.pk
        transaction.on_commit(lambda: _follow_conversation_assignee(callback_id))
    return callback


def _follow_conversation_assignee(callback_id: int) -> None:
    callback = CallbackRequest.objects.select_related("conversation").filter(pk=callback_id).first()
    if callback and callback.assignee_id is None and callback.conversation.assignee_id:
        CallbackRequest.objects.filter(pk=callback_id, assignee__isnull=True).update(
            assignee_id=callback.conversation.assignee_id
        )


def do_record_callback_outcome(
    *, callback: CallbackRequest, actor: User, status: str, note: str = ""
) -> CallbackRequest:
    """Done, no answer or cancelled. A "no answer" may be tried again; done and cancelled are final.
    The outcome is also an internal note on the conversation, so it reads in the thread."""
    from ...selectors import check_conversation_visible
    from ...services import do_add_note

    check_perm(actor, "conversations.reply")
    check_conversation_visible(actor, callback.conversation)
    if status not in OUTCOMES:
        raise ValidationFailed(
            _("Choose what happened."), fields={"status": f"one of {', '.join(str(s) for s in OUTCOMES)}"}
        )
    note = (note or "").strip()
    if len(note) > 2000:
        raise ValidationFailed(_("The note is too long."), fields={"note": "at most 2000 characters"})
    with transaction.atomic():
        locked = CallbackRequest.objects.select_for_update().get(pk=callback.pk)
        if locked.status not in (CallbackStatus.SCHEDULED, CallbackStatus.MISSED):
            raise Conflict(
                _("This callback is already closed (%(status)s).") % {"status": locked.get_status_display()}
            )
        before = {"status": locked.status}
        locked.status = status
        locked.outcome = "\n".join(
            p for p in (locked.outcome, f"{CallbackStatus(status).label}: {note}".rstrip(": ")) if p
        )
        fields = ["status", "outcome"]
        if locked.assignee_id is None:
            locked.assignee = actor
            fields.append("assignee")
        locked.save(update_fields=fields)
        record_audit(actor=actor, action="callback.outcome", obj=locked, before=before,
                     after={"status": status})  # fmt: skip
        label = CallbackStatus(status).label
        do_add_note(conversation=callback.conversation, actor=actor,
                    body=_("Callback: %(outcome)s") % {"outcome": label} + (f"\n{note}" if note else ""))  # fmt: skip
    callback.refresh_from_db()
    return callback


def _reminder_payload(callback: CallbackRequest) -> dict[str, Any]:
    conv = callback.conversation
    return {
        "type": "callback.reminder",
        "callback": callback.pk,
        "conversation": conv.pk,
        "phone": callback.phone,
        "requested_for": callback.requested_for.isoformat(),
        "customer": str(conv.customer),
    }


def send_due_reminders(now: dt.datetime | None = None) -> int:
    """Remind whoever owns each callback due within 10 minutes; returns how many were sent.

    Exactly once: the row is claimed by a conditional UPDATE (reminder_sent_at IS NULL), so two
    workers or a rerun after a crash cannot remind twice; the live update goes out after commit.
    A callback nobody owns yet is announced to its team's inbox instead.
    """
    from ...services import inbox_group

    now = now or timezone.now()
    due = list(
        CallbackRequest.objects.filter(
            status=CallbackStatus.SCHEDULED,
            reminder_sent_at__isnull=True,
            requested_for__lte=now + REMINDER_LEAD,
            requested_for__gt=now - REMINDER_STALE,
        )
        .select_related("conversation", "conversation__customer")
        .order_by("requested_for")[:500]
    )
    sent = 0
    for callback in due:
        with transaction.atomic():
            claimed = CallbackRequest.objects.filter(pk=callback.pk, reminder_sent_at__isnull=True).update(
                reminder_sent_at=now
            )
            if not claimed:
                continue
            owner = callback.assignee_id or callback.conversation.assignee_id
            group = f"user.{owner}" if owner else inbox_group(callback.conversation.team_id)
            payload = _reminder_payload(callback)
            transaction.on_commit(lambda group=group, payload=payload: publish(group, payload))
            sent += 1
    return sent
