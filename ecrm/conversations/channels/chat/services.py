"""Writes and reads of the live chat channel. The visitor consumer and the widget's HTTP endpoints are
thin: they verify the signed session, then call these functions; every message still enters through
`receive_inbound`, so customer matching, threading, visibility and the timeline work as for any channel."""

from __future__ import annotations

import time
import uuid
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ecrm.core.consumers import publish
from ecrm.core.exceptions import EcrmError, NotFound, ValidationFailed
from ecrm.customers.models import Customer
from ecrm.customers.normalize import InvalidIdentifier, normalize_email, normalize_identity

from ...models import ChannelKind, Conversation, DeliveryStatus, Inbox, Message, MessageDirection
from ...services import Inbound, InboundResult, conversation_group, receive_inbound
from .adapter import OFFLINE_THREAD_PREFIX, ChatConfig
from .identity import ChatSession, new_session_id, sign_session, verify_customer
from .presence import inbox_has_agent_online

HISTORY_LIMIT = 100
SESSION_LIMIT_PER_IP = (30, 600)  # new chat sessions or offline messages per address per 10 minutes


class RateLimited(EcrmError):
    code = "rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


def chat_inbox(inbox_id: Any) -> Inbox:
    try:
        pk = int(inbox_id)
    except (TypeError, ValueError):
        raise ValidationFailed("inbox must be an inbox id.", fields={"inbox": "must be an integer"}) from None
    inbox = Inbox.objects.filter(pk=pk, is_active=True, kind=ChannelKind.CHAT).select_related("team").first()
    if inbox is None:
        raise NotFound("No such chat.", fields={"inbox": "no active chat inbox with this id"})
    return inbox


def chat_config(inbox: Inbox) -> ChatConfig:
    return ChatConfig.model_validate(inbox.config or {})


def origin_allowed(cfg: ChatConfig, origin: str | None) -> bool:
    return not cfg.allowed_origins or (origin or "").lower().rstrip("/") in cfg.allowed_origins


def public_config(inbox: Inbox) -> dict[str, Any]:
    """What the widget needs before the visitor types anything."""
    cfg = chat_config(inbox)
    online = (not cfg.offline_when_no_agent) or inbox_has_agent_online(inbox)
    return {"inbox": inbox.pk, "title": cfg.title, "greeting": cfg.greeting, "require_email": cfg.require_email,
            "online": online, "max_message_chars": cfg.max_message_chars, "strings": widget_strings()}  # fmt: skip


def widget_strings() -> dict[str, str]:
    """The widget's texts, in the visitor's language (LocaleMiddleware reads Accept-Language)."""
    return {
        "open": _("Chat"),
        "close": _("Close"),
        "name": _("Your name"),
        "email": _("Email"),
        "email_optional": _("Email (optional)"),
        "start": _("Start chat"),
        "message": _("Message"),
        "placeholder": _("Type your message…"),
        "send": _("Send"),
        "typing": _("%(name)s is typing…"),
        "agent": _("Agent"),
        "read": _("Read"),
        "sending": _("Sending…"),
        "not_sent": _("Not sent"),
        "reconnecting": _("Reconnecting…"),
        "offline_title": _("We are offline right now"),
        "offline_intro": _("Leave a message and we will answer by email."),
        "offline_send": _("Send message"),
        "offline_thanks": _("Thank you! We will reply to your email soon."),
        "error": _("Something went wrong. Please try again."),
        "new_chat": _("Start a new chat"),
    }


# --- rate limits -----------------------------------------------------------------------------------


def check_rate(key: str, *, limit: int, window: int) -> None:
    """Sliding window: at most `limit` hits per `window` seconds for `key`; a refused hit is not counted,
    so the visitor can write again as soon as the oldest hit leaves the window."""
    now = time.time()
    cache_key = f"chat.rate.{key}"
    hits = [t for t in (cache.get(cache_key) or []) if t > now - window]
    if len(hits) >= limit:
        retry_after = max(1, int(hits[0] + window - now + 0.999))
        raise RateLimited(
            _("You are sending messages too fast. Please wait %(seconds)s seconds.")
            % {"seconds": retry_after},
            retry_after=retry_after,
        )
    hits.append(now)
    cache.set(cache_key, hits, timeout=window + 1)


# --- sessions --------------------------------------------------------------------------------------


def _clean_email(raw: Any, *, required: bool) -> str:
    raw = (raw or "").strip() if isinstance(raw, str) else ""
    if not raw:
        if required:
            raise ValidationFailed(_("Please enter your email address."), fields={"email": "required"})
        return ""
    try:
        return normalize_email(raw)
    except InvalidIdentifier as exc:
        raise ValidationFailed(_("Please enter a valid email address."), fields={"email": str(exc)}) from exc


def _clean_anonymous_id(raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip():
        return ""
    try:
        return normalize_identity("anonymous", raw[:100])
    except InvalidIdentifier:
        return ""


def do_start_session(
    *, inbox: Inbox, anonymous_id: Any = "", name: Any = "", email: Any = "", customer_token: str = "",
    client_address: str = "",
) -> tuple[ChatSession, str]:  # fmt: skip
    """The pre-chat form was sent: issue a signed session token for a new chat session."""
    cfg = chat_config(inbox)
    customer_id = None
    if customer_token:
        customer_id = verify_customer(customer_token)
        customer = Customer.objects.filter(pk=customer_id).first()
        if customer is None:
            raise NotFound("No such customer.", fields={"customer_token": "unknown customer"})
        name = name or customer.display_name
        email = email or customer.email
    name = (name.strip() if isinstance(name, str) else "")[:100]
    clean_email = _clean_email(email, required=cfg.require_email and customer_id is None)
    if client_address:
        check_rate(f"ip.{client_address}", limit=SESSION_LIMIT_PER_IP[0], window=SESSION_LIMIT_PER_IP[1])
    session = ChatSession(session_id=new_session_id(), inbox_id=inbox.pk, anonymous_id=_clean_anonymous_id(anonymous_id),
                          name=name, email=clean_email, customer_id=customer_id)  # fmt: skip
    return session, sign_session(session)


def session_conversation(session: ChatSession) -> Conversation | None:
    return (
        Conversation.objects.filter(inbox_id=session.inbox_id, thread_key=session.thread_key)
        .order_by("-id")
        .first()
    )


# --- messages --------------------------------------------------------------------------------------


def check_message_body(body: Any, cfg: ChatConfig) -> str:
    if not isinstance(body, str) or not body.strip():
        raise ValidationFailed(_("Write a message first."), fields={"body": "required"})
    body = body.strip()
    if len(body) > cfg.max_message_chars:
        raise ValidationFailed(
            _("Your message is too long (%(n)s characters; at most %(max)s).")
            % {"n": len(body), "max": cfg.max_message_chars},
            code="too_long",
            fields={"body": f"at most {cfg.max_message_chars} characters"},
        )
    return body


def do_post_visitor_message(
    *, session: ChatSession, body: Any, client_id: Any = None, page: Any = "", resend: bool = False,
    inbox: Inbox | None = None,
) -> InboundResult:  # fmt: skip
    """One message typed by the visitor: size and flood checks, then the common inbound path.
    `client_id` makes a resend idempotent; `inbox` may be passed by a caller that already loaded it
    (the consumer does, once per socket)."""
    if inbox is None or inbox.pk != session.inbox_id:
        inbox = chat_inbox(session.inbox_id)
    cfg = chat_config(inbox)
    body = check_message_body(body, cfg)
    client_id = str(client_id)[:64] if client_id else ""
    external_id = f"chat:{session.session_id}:{client_id}" if client_id else None
    if external_id and resend:
        # The widget resends what was never acknowledged after a reconnect: if it was stored, answer
        # with the stored message and do not count it against the rate limit. (Without the flag a
        # repeat is still stored once, by receive_inbound; it just counts.)
        known = (
            Message.objects.filter(inbox=inbox, external_id=external_id)
            .select_related("conversation")
            .first()
        )
        if known is not None:
            return InboundResult(known.conversation, known, False, duplicate=True)
    check_rate(
        f"session.{session.session_id}", limit=cfg.rate_limit_messages, window=cfg.rate_limit_window_seconds
    )
    identities = []
    if session.email:
        identities.append(("email", session.email))
    if session.anonymous_id:
        identities.append(("anonymous", session.anonymous_id))
    if not identities:  # neither cookie nor email: the chat session itself is the visitor's only identity
        identities.append(("anonymous", f"chat-{session.session_id}"))
    customer = Customer.objects.filter(pk=session.customer_id).first() if session.customer_id else None
    metadata: dict[str, Any] = {"chat_session": session.session_id}
    if isinstance(page, str) and page:
        metadata["page"] = page[:500]
    first_line = body.splitlines()[0][:80]
    with transaction.atomic():
        result = receive_inbound(
            Inbound(
                inbox=inbox,
                identities=identities,
                body_text=body,
                subject=first_line,
                external_id=external_id,
                thread_key=session.thread_key,
                traits={"first_name": session.name} if session.name else {},
                metadata=metadata,
                customer=customer,
            )
        )
        if result.created_conversation and session.anonymous_id:
            _link_visitor(result.conversation, session.anonymous_id)
    return result


def _link_visitor(conversation: Conversation, anonymous_id: str) -> None:
    """The agent sees who the visitor is and what they viewed: the conversation keeps the tracker's
    anonymous id, and the visitor's anonymous page views move onto the matched customer."""
    from ecrm.ingest.models import Event

    Conversation.objects.filter(pk=conversation.pk).update(visitor_id=anonymous_id[:100])
    conversation.visitor_id = anonymous_id[:100]
    Event.objects.filter(anonymous_id=anonymous_id, customer__isnull=True).update(
        customer_id=conversation.customer_id
    )


def do_mark_seen_by_visitor(*, session: ChatSession) -> int:
    """The visitor has the chat open and saw the agent's replies: they become 'read' for the agent."""
    conversation = session_conversation(session)
    if conversation is None:
        return 0
    now = timezone.now()
    with transaction.atomic():
        n = (
            Message.objects.filter(
                conversation=conversation, direction=MessageDirection.OUTBOUND, read_at__isnull=True
            )
            .exclude(status=DeliveryStatus.FAILED)
            .update(read_at=now, status=DeliveryStatus.READ)
        )
        if n:
            payload = {
                "type": "messages.seen",
                "conversation": conversation.pk,
                "by": "visitor",
                "at": now.isoformat(),
            }
            transaction.on_commit(lambda: publish(conversation_group(conversation.pk), payload))
    return n


# --- what the visitor may read ---------------------------------------------------------------------


def visitor_message(message: Message) -> dict[str, Any]:
    """The one shape a message has on the visitor's side. Notes never get here (callers filter)."""
    author = ""
    if message.direction == MessageDirection.OUTBOUND and message.author is not None:
        author = message.author.first_name or message.author.username
    return {
        "id": message.pk,
        "direction": message.direction,
        "body": message.body_text,
        "at": message.created_at.isoformat(),
        "author": author,
        "read": message.read_at is not None,
    }


def visitor_history(session: ChatSession) -> tuple[Conversation | None, list[dict[str, Any]]]:
    conversation = session_conversation(session)
    if conversation is None:
        return None, []
    rows = list(
        Message.objects.filter(
            conversation=conversation, direction__in=[MessageDirection.INBOUND, MessageDirection.OUTBOUND]
        )
        .select_related("author")
        .order_by("-created_at", "-id")[:HISTORY_LIMIT]
    )
    return conversation, [visitor_message(m) for m in reversed(rows)]


def visitor_visible_message(conversation_id: int, message_id: int) -> dict[str, Any] | None:
    """A message of this conversation the visitor may see (inbound or outbound, never a note)."""
    message = (
        Message.objects.filter(
            pk=message_id,
            conversation_id=conversation_id,
            direction__in=[MessageDirection.INBOUND, MessageDirection.OUTBOUND],
        )
        .select_related("author")
        .first()
    )
    return visitor_message(message) if message else None


# --- offline ---------------------------------------------------------------------------------------


def do_leave_offline_message(
    *, inbox: Inbox, name: Any, email: Any, body: Any, anonymous_id: Any = "", customer_token: str = "",
    client_address: str = "",
) -> InboundResult:  # fmt: skip
    """No agent is online: the visitor's message becomes an email conversation, answered by email."""
    cfg = chat_config(inbox)
    customer = None
    if customer_token:
        customer = Customer.objects.filter(pk=verify_customer(customer_token)).first()
    errors: dict[str, str] = {}
    try:
        clean_email = _clean_email(email or (customer.email if customer else ""), required=True)
    except ValidationFailed as exc:
        errors.update(exc.fields)
    try:
        text = check_message_body(body, cfg)
    except ValidationFailed as exc:
        errors.update(exc.fields)
    if errors:
        raise ValidationFailed(_("Please check the highlighted fields."), fields=errors)
    if client_address:
        check_rate(f"ip.{client_address}", limit=SESSION_LIMIT_PER_IP[0], window=SESSION_LIMIT_PER_IP[1])
    name = (name.strip() if isinstance(name, str) else "")[:100]
    target = inbox
    if cfg.offline_inbox_id:
        target = Inbox.objects.filter(pk=cfg.offline_inbox_id, is_active=True).first() or inbox
    identities = [("email", clean_email)]
    aid = _clean_anonymous_id(anonymous_id)
    if aid:
        identities.append(("anonymous", aid))
    subject = _("Offline chat message from %(name)s") % {"name": name or clean_email}
    with transaction.atomic():
        result = receive_inbound(
            Inbound(
                inbox=target,
                identities=identities,
                body_text=text,
                subject=subject,
                thread_key=f"{OFFLINE_THREAD_PREFIX}{uuid.uuid4().hex}" if target.pk == inbox.pk else "",
                traits={"first_name": name} if name else {},
                metadata={"offline_chat": inbox.pk},
                customer=customer,
            )
        )
        if aid:
            _link_visitor(result.conversation, aid)
    return result
