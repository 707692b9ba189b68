"""Inbox REST API (mounted under /api/v1/conversations): list conversations with the inbox's
filters and keyset cursor, one conversation with its messages, reply, note, assign, set status.

Console sessions see what the agent sees (team visibility) and write as that agent. Integration
keys: the read scope reads every conversation, the write scope also writes — acting as the user
who created the key, so the same permission and visibility rules and the audit log apply.
"""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Query, Router

from ecrm.core.exceptions import NotFound, PermissionDenied, ValidationFailed
from ecrm.core.models import ApiKey, Team, User

from . import selectors, services
from .models import Conversation, Message
from .schemas import (
    AssignIn,
    ConversationDetailOut,
    ConversationListQuery,
    ConversationOut,
    ConversationPageOut,
    MessageOut,
    NoteIn,
    ReplyIn,
    StatusIn,
)

router = Router(tags=["inbox"])


def _user_ref(user: User | None) -> dict | None:
    if user is None:
        return None
    return {"id": user.pk, "username": user.username, "name": user.get_full_name() or user.username}


def conversation_out(c: Conversation) -> dict:
    return {
        "id": c.pk, "subject": c.subject, "channel": c.channel, "inbox_id": c.inbox_id, "inbox": c.inbox.name,
        "team_id": c.team_id, "status": c.status, "assignee": _user_ref(c.assignee),
        "customer": {"id": c.customer_id, "name": c.customer.display_name, "email": c.customer.email},
        "contact": c.contact, "unread": c.unread, "last_message_at": c.last_message_at,
        "created_at": c.created_at,
    }  # fmt: skip


def message_out(m: Message) -> dict:
    return {
        "id": m.pk, "direction": m.direction, "author": _user_ref(m.author), "sender": m.sender,
        "body_text": m.body_text, "body_html": m.body_html, "status": m.status, "error": m.error,
        "created_at": m.created_at, "read_at": m.read_at,
        "attachments": [{"id": a.pk, "filename": a.filename, "content_type": a.content_type, "size": a.size}
                        for a in m.attachments.all()],
    }  # fmt: skip


def _writer(request: HttpRequest) -> User:
    """The user a write acts as: the signed-in agent, or the owner of a write-scope key."""
    principal = request.auth
    if isinstance(principal, ApiKey):
        if not principal.allows_write():
            raise PermissionDenied("This API key is read-only.", code="read_only_key")
        owner = principal.created_by
        if owner is None or not owner.is_active:
            raise PermissionDenied("This API key has no active owner to act as.", code="key_without_owner")
        return owner
    if isinstance(principal, User):
        return principal
    raise PermissionDenied("Not allowed.")


def _for_write(request: HttpRequest, conversation_id: int) -> tuple[User, Conversation]:
    actor = _writer(request)
    # visibility of the acting user, not of the key: a key made by an agent writes as that agent
    return actor, selectors.access_conversation_for_user(actor, conversation_id)


@router.get("/", response=ConversationPageOut, summary="List conversations (inbox views, keyset cursor)")
def list_conversations(request: HttpRequest, query: Query[ConversationListQuery]):
    """Newest activity first. `next_cursor` goes into `after` for the next page; it is null on the
    last page. Agents (console sessions) see only their teams' conversations."""
    filters = selectors.InboxFilters(view=query.view, status=query.status, channel=query.channel,
                                     inbox=query.inbox, q=query.q.strip())  # fmt: skip
    page = selectors.inbox_page_for_user(request.auth, filters, after=query.after, limit=query.limit)
    return {"items": [conversation_out(c) for c in page.conversations], "next_cursor": page.next_cursor}


@router.get(
    "/{int:conversation_id}", response=ConversationDetailOut, summary="One conversation with its messages"
)
def get_conversation(request: HttpRequest, conversation_id: int):
    conv = selectors.access_conversation_for_principal(request.auth, conversation_id)
    return {
        **conversation_out(conv),
        "messages": [message_out(m) for m in selectors.conversation_messages(conv)],
    }


@router.post(
    "/{int:conversation_id}/reply", response={201: MessageOut}, summary="Reply in the customer's channel"
)
def reply(request: HttpRequest, conversation_id: int, payload: ReplyIn):
    actor, conv = _for_write(request, conversation_id)
    message = services.do_send_reply(conversation=conv, actor=actor, body_text=payload.body)
    return 201, message_out(message)


@router.post("/{int:conversation_id}/notes", response={201: MessageOut}, summary="Add an internal note")
def add_note(request: HttpRequest, conversation_id: int, payload: NoteIn):
    actor, conv = _for_write(request, conversation_id)
    return 201, message_out(services.do_add_note(conversation=conv, actor=actor, body=payload.body))


@router.post("/{int:conversation_id}/assign", response=ConversationOut, summary="Assign (or unassign)")
def assign(request: HttpRequest, conversation_id: int, payload: AssignIn):
    actor, conv = _for_write(request, conversation_id)
    assignee = None
    if payload.assignee is not None:
        assignee = User.objects.filter(pk=payload.assignee, is_active=True).first()
        if assignee is None:
            raise ValidationFailed("No such user.", fields={"assignee": "unknown user"})
    team = None
    if payload.team is not None:
        team = Team.objects.filter(pk=payload.team).first()
        if team is None:
            raise ValidationFailed("No such team.", fields={"team": "unknown team"})
    services.do_assign(conversation=conv, actor=actor, assignee=assignee, team=team)
    return conversation_out(_reload(conv))


def _reload(conv: Conversation) -> Conversation:
    fresh = Conversation.objects.select_related("customer", "inbox", "assignee").filter(pk=conv.pk).first()
    if fresh is None:
        raise NotFound("No such conversation.")
    return fresh


@router.post("/{int:conversation_id}/status", response=ConversationOut, summary="Set the status")
def set_status(request: HttpRequest, conversation_id: int, payload: StatusIn):
    actor, conv = _for_write(request, conversation_id)
    services.do_set_status(conversation=conv, actor=actor, status=payload.status)
    return conversation_out(_reload(conv))
