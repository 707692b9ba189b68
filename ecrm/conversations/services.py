"""Writes on conversations. Every channel's inbound path ends in `receive_inbound`; every reply,
note, assignment and status change goes through the functions here (views, API, tasks alike)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import nh3
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from ecrm.core import events
from ecrm.core.audit import record_audit
from ecrm.core.consumers import publish, publish_each
from ecrm.core.exceptions import NotFound, ValidationFailed
from ecrm.core.models import Team, User
from ecrm.core.permissions import check_perm
from ecrm.customers.models import Customer
from ecrm.customers.services import normalize_identities, resolve_customer

from .models import (
    Attachment,
    ChannelKind,
    Conversation,
    ConversationStatus,
    DeliveryStatus,
    Inbox,
    Message,
    MessageDirection,
)

# --- live updates --------------------------------------------------------------------------------


def inbox_group(team_id: int | None) -> str:
    """WebSocket group of an inbox view: one per team, plus 'conversations.all' for managers."""
    return f"conversations.team.{team_id}" if team_id else "conversations.unteamed"


def conversation_group(conversation_id: int) -> str:
    return f"conversation.{conversation_id}"


def _announce(conversation: Conversation, event: str, message: Message | None = None) -> None:
    payload: dict[str, Any] = {
        "type": event,
        "conversation": conversation.pk,
        "status": conversation.status,
        "assignee": conversation.assignee_id,
        "team": conversation.team_id,
    }
    own_group = conversation_group(conversation.pk)
    own_payload = payload
    if message is not None:
        payload["message"] = message.pk
        payload["direction"] = message.direction
        if message.direction in (MessageDirection.INBOUND, MessageDirection.OUTBOUND):
            # The conversation's group (the chat widget, agents watching) also gets the message in
            # the visitor's shape, so a widget's socket forwards it without a trip to the database.
            from .channels.chat.services import visitor_message

            own_payload = {**payload, "visible": visitor_message(message)}
    groups = {inbox_group(conversation.team_id), "conversations.all", own_group}
    if conversation.assignee_id:
        groups.add(f"user.{conversation.assignee_id}")
    items = [(group, own_payload if group == own_group else payload) for group in sorted(groups)]

    transaction.on_commit(lambda: publish_each(items))


# --- inbound -------------------------------------------------------------------------------------


@dataclass
class IncomingAttachment:
    filename: str
    content_type: str
    content: bytes


@dataclass
class Inbound:
    """What a channel adapter hands over for one message from a customer."""

    inbox: Inbox
    identities: list[tuple[str, str]]  # (identity kind, raw value): the first one is the reply address
    body_text: str = ""
    body_html: str = ""
    subject: str = ""
    external_id: str | None = None  # the channel's message id: a resend is stored once
    references: list[str] = field(default_factory=list)  # earlier external ids this replies to
    thread_key: str = ""  # a channel's own thread id (chat session, social thread)
    sent_at: dt.datetime | None = None
    traits: dict[str, Any] = field(default_factory=dict)  # names etc. for a new customer
    attachments: list[IncomingAttachment] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    customer: Customer | None = None  # already known (e.g. a signed-in portal customer)


@dataclass
class InboundResult:
    conversation: Conversation
    message: Message
    created_conversation: bool
    duplicate: bool = False
    created_customer: bool = False


# Other apps can claim a message for an existing conversation, e.g. `service` finds "[#T-123]" in a
# subject. A resolver returns a conversation id or None; the first answer wins.
ThreadResolver = Callable[[Inbound], int | None]
_THREAD_RESOLVERS: list[ThreadResolver] = []
# Called after commit with (conversation_id, message_id, created_conversation) for each inbound message.
InboundHook = Callable[[int, int, bool], None]
_INBOUND_HOOKS: list[InboundHook] = []


def register_thread_resolver(resolver: ThreadResolver) -> None:
    if resolver not in _THREAD_RESOLVERS:
        _THREAD_RESOLVERS.append(resolver)


def register_inbound_hook(hook: InboundHook) -> None:
    if hook not in _INBOUND_HOOKS:
        _INBOUND_HOOKS.append(hook)


# Called after commit with (conversation_id, message_id) for each agent reply (the SLA clock's
# first response, "waiting on customer" pauses...).
ReplyHook = Callable[[int, int], None]
_REPLY_HOOKS: list[ReplyHook] = []


def register_reply_hook(hook: ReplyHook) -> None:
    if hook not in _REPLY_HOOKS:
        _REPLY_HOOKS.append(hook)


ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "div", "em", "font",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre", "s", "small", "span",
    "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
}  # fmt: skip


def sanitize_html(html: str) -> str:
    """Keep the layout of customer HTML, drop scripts, handlers, styles and forms (nh3 = ammonia).
    Images keep their src: the viewer shows them only after the agent clicks (see the inbox)."""
    if not html:
        return ""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes={"a": {"href", "title"}, "img": {"src", "alt", "width", "height"}, "*": {"align"}},
        url_schemes={"http", "https", "mailto", "cid"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def html_to_text(html: str) -> str:
    text = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", html)
    text = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</li>|</tr>|</h\d>", "\n", text)
    text = re.sub(r"<[^>]+>", "", text)
    import html as htmllib

    text = htmllib.unescape(text)
    return re.sub(r"\n\s*\n+", "\n\n", re.sub(r"[ \t\xa0]+", " ", text)).strip()


def _find_thread(data: Inbound) -> Conversation | None:
    if data.references:
        hit = (
            Message.objects.filter(inbox=data.inbox, external_id__in=data.references[-50:])
            .order_by("-created_at")
            .values_list("conversation_id", flat=True)
            .first()
        )
        if hit:
            return Conversation.objects.select_for_update().get(pk=hit)
    if data.thread_key:
        conv = (
            Conversation.objects.select_for_update()
            .filter(inbox=data.inbox, thread_key=data.thread_key)
            .order_by("-id")
            .first()
        )
        if conv:
            return conv
    for resolver in _THREAD_RESOLVERS:
        conv_id = resolver(data)
        if conv_id:
            conv = (
                Conversation.objects.select_for_update()
                .filter(pk=conv_id, inbox__kind=data.inbox.kind)
                .first()
            )
            if conv:
                return conv
    return None


def check_attachment(att: IncomingAttachment) -> str | None:
    """Why an attachment is refused, or None. Refused files are listed on the message, not stored."""
    limit = settings.ECRM_MAX_ATTACHMENT_BYTES
    if len(att.content) > limit:
        return f"larger than the {limit // (1024 * 1024)} MB limit"
    from .files import check_content_type

    return check_content_type(att.filename, att.content_type, att.content)


def receive_inbound(data: Inbound) -> InboundResult:
    """Store one inbound message on the right customer and conversation; idempotent by external id.

    The customer is matched by the identities (creating one when none matches), the conversation by
    the channel's references, thread key or a registered resolver (a new one otherwise). A resolved
    conversation that gets a new message opens again.
    """
    if not data.customer and not data.identities:
        raise ValidationFailed("A message needs a sender.", fields={"sender": "required"})
    if not (data.body_text or data.body_html or data.attachments or data.metadata):
        raise ValidationFailed("The message is empty.", fields={"body": "required"})
    now = timezone.now()
    sent_at = min(data.sent_at or now, now)  # a sender's clock in the future does not reorder threads
    with transaction.atomic():
        if data.external_id:
            existing = (
                Message.objects.select_related("conversation")
                .filter(inbox=data.inbox, external_id=data.external_id)
                .first()
            )
            if existing:
                return InboundResult(existing.conversation, existing, False, duplicate=True)
        created_customer = False
        if data.customer is not None:
            customer = data.customer
        else:
            ids = normalize_identities(data.identities)
            resolution = resolve_customer(ids, source=data.inbox.kind, traits=data.traits)
            customer, created_customer = resolution.customer, resolution.created
        conversation = _find_thread(data)
        created = conversation is None
        contact = data.identities[0][1] if data.identities else ""
        if created:
            conversation = Conversation.objects.create(
                inbox=data.inbox,
                channel=data.inbox.kind,
                customer=customer,
                team=data.inbox.team,
                subject=(data.subject or "")[:300],
                contact=contact[:320],
                thread_key=data.thread_key[:200],
            )
        body_html = sanitize_html(data.body_html)
        body_text = data.body_text or (html_to_text(body_html) if body_html else "")
        try:
            with transaction.atomic():
                message = Message.objects.create(
                    conversation=conversation,
                    inbox=data.inbox,
                    direction=MessageDirection.INBOUND,
                    sender=contact[:320],
                    body_text=body_text,
                    body_html=body_html,
                    external_id=(data.external_id or None) and data.external_id[:300],
                    metadata=data.metadata,
                    created_at=sent_at,
                    status=DeliveryStatus.RECEIVED,
                )
        except IntegrityError:
            # the same message arrived twice at once (two pollers): the other one stored it
            message = Message.objects.get(inbox=data.inbox, external_id=data.external_id)
            return InboundResult(message.conversation, message, False, duplicate=True)
        refused = _store_attachments(message, data.attachments)
        if refused:
            message.metadata = {**message.metadata, "refused_attachments": refused}
            message.save(update_fields=["metadata"])
        updates = {"last_message_at": sent_at, "last_inbound_at": sent_at, "unread": F("unread") + 1}
        if conversation.status != ConversationStatus.OPEN:
            updates["status"] = ConversationStatus.OPEN
        if conversation.customer_id != customer.pk and created:
            updates["customer"] = customer
        Conversation.objects.filter(pk=conversation.pk).update(**updates, updated_at=now)
        conversation.refresh_from_db()
        _touch_seen([customer.pk], sent_at)  # in this transaction: one commit, not three
        _announce(conversation, "message.created", message)
        if created and data.inbox.auto_assign:
            conv_id = conversation.pk
            transaction.on_commit(lambda: auto_assign(conv_id))
        msg_id, conv_id, was_new = message.pk, conversation.pk, created
        if created:
            events.emit(
                "conversation.created",
                subject_type="conversation",
                subject_id=conv_id,
                data={"channel": conversation.channel, "inbox": conversation.inbox_id,
                      "customer": customer.pk, "team": conversation.team_id},
            )  # fmt: skip
        events.emit(
            "message.received",
            subject_type="conversation",
            subject_id=conv_id,
            data={"message": msg_id, "channel": conversation.channel, "customer": customer.pk,
                  "new_conversation": created, "auto": bool((data.metadata or {}).get("auto"))},
        )  # fmt: skip
        for hook in _INBOUND_HOOKS:
            transaction.on_commit(lambda hook=hook: hook(conv_id, msg_id, was_new))
    return InboundResult(conversation, message, created, created_customer=created_customer)


def _touch_seen(customer_ids: list[int], at: dt.datetime) -> None:
    from ecrm.customers.services import do_touch_seen

    do_touch_seen(customer_ids, at)


def _store_attachments(message: Message, attachments: Iterable[IncomingAttachment]) -> list[dict]:
    refused = []
    for att in attachments:
        reason = check_attachment(att)
        name = _safe_filename(att.filename)
        if reason:
            refused.append({"filename": name, "size": len(att.content), "reason": reason})
            continue
        row = Attachment(
            message=message, filename=name, content_type=att.content_type[:120], size=len(att.content)
        )
        row.file.save(name, ContentFile(att.content), save=False)
        row.save()
    return refused


def _safe_filename(name: str) -> str:
    name = (name or "attachment").replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[\x00-\x1f<>:\"|?*]", "_", name).strip(". ") or "attachment"
    return name[:200]


# --- agent actions -------------------------------------------------------------------------------


def _check_access(actor: User, conversation: Conversation, capability: str = "conversations.reply") -> None:
    from .selectors import check_conversation_visible

    check_perm(actor, capability)
    check_conversation_visible(actor, conversation)


def do_send_reply(
    *,
    conversation: Conversation,
    actor: User,
    body_text: str,
    attachments: list[IncomingAttachment] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Message:
    """Reply to the customer in the channel they used; delivered by a task after commit."""
    _check_access(actor, conversation)
    body_text = (body_text or "").strip()
    if not body_text and not attachments:
        raise ValidationFailed("Write a reply first.", fields={"body": "required"})
    from .channels import get_adapter

    adapter = get_adapter(conversation.channel)
    now = timezone.now()
    with transaction.atomic():
        conv = Conversation.objects.select_for_update().get(pk=conversation.pk)
        # a live chat reply is delivered by the publish at commit: stored as sent, no delivery job
        inline = adapter.delivered_on_commit(conv) if adapter.can_reply else None
        queued = adapter.can_reply and inline is None
        message = Message.objects.create(
            conversation=conv,
            inbox_id=conv.inbox_id,
            direction=MessageDirection.OUTBOUND,
            author=actor,
            body_text=body_text,
            status=DeliveryStatus.QUEUED if queued else DeliveryStatus.SENT,
            metadata={**(metadata or {}), **(inline or {})},
            created_at=now,
        )
        refused = _store_attachments(message, attachments or [])
        if refused:
            raise ValidationFailed(
                "An attachment was refused: " + "; ".join(f"{r['filename']}: {r['reason']}" for r in refused),
                fields={"attachments": "refused"},
            )
        updates: dict[str, Any] = {"last_message_at": now, "unread": 0, "updated_at": now}
        if conv.first_response_at is None:
            updates["first_response_at"] = now
        if conv.assignee_id is None:
            updates["assignee"] = actor  # who answers an unassigned conversation owns it
        Conversation.objects.filter(pk=conv.pk).update(**updates)
        conv.refresh_from_db()
        record_audit(actor=actor, action="conversation.reply", obj=conv, after={"message": message.pk})
        _announce(conv, "message.created", message)
        message_id, conv_id = message.pk, conv.pk
        if queued:
            transaction.on_commit(lambda: _enqueue_delivery(message_id))
        for hook in _REPLY_HOOKS:
            transaction.on_commit(lambda hook=hook: hook(conv_id, message_id))
        events.emit("message.sent", subject_type="conversation", subject_id=conv_id,
                    data={"message": message_id, "author": actor.pk}, actor=actor)  # fmt: skip
    conversation.refresh_from_db()
    return message


def _enqueue_delivery(message_id: int) -> None:
    from .tasks import deliver_message

    deliver_message(message_id)


def deliver(message_id: int) -> Message:
    """Send one queued outbound message through its channel (called by the `deliver_message` task)."""
    from .channels import DeliveryError, get_adapter

    message = Message.objects.select_related("conversation", "inbox").get(pk=message_id)
    if message.status != DeliveryStatus.QUEUED:
        return message  # already sent: a retried task must not send twice
    try:
        meta = get_adapter(message.conversation.channel).send(message)
    except DeliveryError as exc:
        if not exc.permanent:
            raise  # the task retries with backoff, then dead-letters
        Message.objects.filter(pk=message.pk).update(status=DeliveryStatus.FAILED, error=str(exc)[:2000])
    else:
        fields: dict[str, Any] = {"status": DeliveryStatus.SENT, "error": ""}
        if meta.get("external_id"):
            fields["external_id"] = str(meta.pop("external_id"))[:300]
        fields["metadata"] = {**message.metadata, **meta}
        Message.objects.filter(pk=message.pk).update(**fields)
    message.refresh_from_db()
    _announce_now(message)
    return message


def _announce_now(message: Message) -> None:
    payload = {"type": "message.status", "conversation": message.conversation_id, "message": message.pk,
               "status": message.status}  # fmt: skip
    publish(conversation_group(message.conversation_id), payload)


MENTION_RE = re.compile(r"@([\w.\-]+)")


def do_add_note(*, conversation: Conversation, actor: User, body: str) -> Message:
    """An internal note; @username mentions notify those users (if they may see the conversation)."""
    _check_access(actor, conversation)
    body = (body or "").strip()
    if not body:
        raise ValidationFailed("Write a note first.", fields={"body": "required"})
    from .selectors import can_see_conversation

    mentioned = [
        u for u in User.objects.filter(username__in=set(MENTION_RE.findall(body)), is_active=True)
        if can_see_conversation(u, conversation)
    ]  # fmt: skip
    with transaction.atomic():
        note = Message.objects.create(
            conversation=conversation,
            inbox_id=conversation.inbox_id,
            direction=MessageDirection.NOTE,
            author=actor,
            body_text=body,
            status=DeliveryStatus.SENT,
            metadata={"mentions": [u.pk for u in mentioned]},
            created_at=timezone.now(),
        )
        _announce(conversation, "note.created", note)
        for user in mentioned:
            payload = {
                "type": "mention",
                "conversation": conversation.pk,
                "message": note.pk,
                "by": actor.username,
            }
            transaction.on_commit(lambda user=user, payload=payload: publish(f"user.{user.pk}", payload))
    return note


def do_set_status(*, conversation: Conversation, actor: User | None, status: str) -> Conversation:
    """Open, pend or resolve a conversation. `actor=None` is the system (a workflow rule)."""
    if actor is not None:
        _check_access(actor, conversation)
    if status not in ConversationStatus.values:
        raise ValidationFailed(f"Unknown status {status!r}.", fields={"status": "invalid"})
    with transaction.atomic():
        conv = Conversation.objects.select_for_update().get(pk=conversation.pk)
        before = conv.status
        if before == status:
            return conv
        conv.status = status
        conv.save(update_fields=["status", "updated_at"])
        record_audit(actor=actor, action="conversation.status", obj=conv, before={"status": before},
                     after={"status": status})  # fmt: skip
        _announce(conv, "conversation.updated")
        events.emit("conversation.status_changed", subject_type="conversation", subject_id=conv.pk,
                    data={"changes": {"status": [before, status]}}, actor=actor)  # fmt: skip
    return conv


def do_mark_read(*, conversation: Conversation, actor: User) -> None:
    """The agent opened the conversation: inbound messages are read (the chat widget shows it)."""
    _check_access(actor, conversation, "conversations.view")
    now = timezone.now()
    with transaction.atomic():
        n = Message.objects.filter(
            conversation=conversation, direction=MessageDirection.INBOUND, read_at__isnull=True
        ).update(read_at=now)
        Conversation.objects.filter(pk=conversation.pk).update(unread=0)
        if n:
            payload = {"type": "messages.read", "conversation": conversation.pk, "at": now.isoformat()}
            transaction.on_commit(lambda: publish(conversation_group(conversation.pk), payload))


# --- assignment: the one seam the router (a later issue) replaces ----------------------------------


def do_assign(
    *, conversation: Conversation, actor: User | None, assignee: User | None, team: Team | None = None,
    reason: str = "manual",
) -> Conversation:  # fmt: skip
    """Assign to a user (None: unassign) and optionally move to a team. `actor=None` is the system."""
    if actor is not None:
        _check_access(actor, conversation)
        if actor.role == "agent" and assignee not in (None, actor):
            check_perm(actor, "conversations.view_all")  # agents take work; managers hand it out
    with transaction.atomic():
        conv = Conversation.objects.select_for_update().get(pk=conversation.pk)
        new_team = team if team is not None else conv.team
        if assignee is not None:
            from .selectors import can_work_on

            if not can_work_on(assignee, new_team):
                raise ValidationFailed(
                    f"{assignee.get_full_name() or assignee.username} is not on the team {new_team}.",
                    fields={"assignee": "not on team"},
                )
        before = {"assignee": conv.assignee_id, "team": conv.team_id}
        conv.assignee = assignee
        conv.team = new_team
        conv.save(update_fields=["assignee", "team", "updated_at"])
        record_audit(actor=actor, action="conversation.assign", obj=conv, before=before,
                     after={"assignee": conv.assignee_id, "team": conv.team_id, "reason": reason})  # fmt: skip
        _announce(conv, "conversation.assigned")
        changed = events.changes(before, {"assignee": conv.assignee_id, "team": conv.team_id})
        if changed:
            events.emit("conversation.assigned", subject_type="conversation", subject_id=conv.pk,
                        data={"changes": changed, "reason": reason}, actor=actor)  # fmt: skip
    return conv


def auto_assign(conversation_id: int) -> Conversation | None:
    """Round-robin within the conversation's team: the member after the one given the last one."""
    from .models import RoundRobinCursor
    from .selectors import team_agents

    conv = Conversation.objects.filter(pk=conversation_id, assignee__isnull=True).first()
    if conv is None or conv.team_id is None:
        return None
    members = team_agents(conv.team_id)
    if not members:
        return None
    with transaction.atomic():
        cursor, _ = RoundRobinCursor.objects.get_or_create(team_id=conv.team_id)
        cursor = RoundRobinCursor.objects.select_for_update().get(pk=cursor.pk)  # two workers take turns
        after = [u for u in members if u.pk > (cursor.last_user_id or 0)]
        agent = (after or members)[0]
        cursor.last_user_id = agent.pk
        cursor.save(update_fields=["last_user_id"])
        return do_assign(conversation=conv, actor=None, assignee=agent, reason="round_robin")


def create_inbox(*, actor: User, name: str, kind: str, team: Team | None, config: dict | None = None,
                 auto_assign: bool = False) -> Inbox:  # fmt: skip
    check_perm(actor, "conversations.configure")
    if kind not in ChannelKind.values:
        raise ValidationFailed(f"Unknown channel {kind!r}.", fields={"kind": "invalid"})
    if not (name or "").strip():
        raise ValidationFailed("Give the inbox a name.", fields={"name": "required"})
    from .channels import get_adapter

    clean = get_adapter(kind).validate_config(config)
    with transaction.atomic():
        inbox = Inbox.objects.create(
            name=name.strip(), kind=kind, team=team, config=clean, auto_assign=auto_assign
        )
        record_audit(actor=actor, action="inbox.create", obj=inbox, after={"name": inbox.name, "kind": kind})
    return inbox


def get_inbox(inbox_id: int) -> Inbox:
    inbox = Inbox.objects.filter(pk=inbox_id, is_active=True).first()
    if inbox is None:
        raise NotFound("No such inbox.")
    return inbox
