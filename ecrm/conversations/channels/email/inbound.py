"""The one function every inbound mail path calls (MTA pipe, HTTP endpoint, IMAP poller)."""

from __future__ import annotations

import copy
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from ecrm.core.consumers import publish
from ecrm.core.exceptions import EcrmError, ValidationFailed

from ...models import Conversation, ConversationStatus, Inbox, Message
from ...services import (
    InboundResult,
    IncomingAttachment,
    conversation_group,
    inbox_group,
    receive_inbound,
)
from .loops import classify, diagnostic, do_mark_bounced, find_bounced_reply
from .parse import ParsedEmail, parse_email, to_inbound

ORIGINAL_NAME = "original-message.eml"
# parser notes that lose nothing: the message reads the same as the original
HARMLESS_DEFECTS = {"no Message-ID; using a hash of the message"}


class MessageTooLarge(EcrmError):
    code = "too_large"
    status = 413


@dataclass
class EmailIngestResult:
    result: InboundResult
    auto: str | None
    bounced_message_id: int | None = None

    @property
    def refused_attachments(self) -> list[dict]:
        return list((self.result.message.metadata or {}).get("refused_attachments", []))


def check_email_inbox(inbox: Inbox) -> None:
    if inbox.kind != "email":
        raise ValidationFailed(f"Inbox {inbox.pk} is not an email inbox.", fields={"inbox": "not email"})
    if not inbox.is_active:
        raise ValidationFailed(f"Inbox {inbox.pk} is switched off.", fields={"inbox": "inactive"})


def ingest_raw_email(*, inbox: Inbox, raw: bytes) -> EmailIngestResult:
    """Parse one raw message and store it through `receive_inbound` (idempotent by Message-ID).

    Auto-replies and bounces are stored with `metadata["auto"]` and never auto-assigned; a bounce is
    filed on the conversation of the reply it bounced (no customer is created for MAILER-DAEMON) and
    marks that reply failed. Raises ValidationFailed for unusable input, MessageTooLarge over the limit.
    """
    check_email_inbox(inbox)
    limit = settings.ECRM_MAX_RAW_EMAIL_BYTES
    if len(raw) > limit:
        raise MessageTooLarge(
            f"The message is {len(raw)} bytes; the limit is {limit} bytes.", fields={"message": "too large"}
        )
    parsed = parse_email(raw)
    parsed.auto, parsed.auto_reason = classify(parsed)
    if not parsed.auto and _own_address(inbox, parsed.from_address):
        # our own address writing to us (a forwarding rule pointing back, a misconfigured alias):
        # answering it would answer ourselves
        parsed.auto, parsed.auto_reason = "autoreply", "sent from this inbox's own address"
    data = to_inbound(parsed, inbox)
    if keeps_original(parsed):
        # Whatever the parser could not read is still in the original: keep it with the message so
        # an agent can open it in a mail program (nothing of a malformed message is lost).
        data.attachments.append(IncomingAttachment(ORIGINAL_NAME, "message/rfc822", raw))
    bounced = None
    with transaction.atomic():
        if parsed.auto:
            # Automatic mail must not start the round-robin: an agent would be handed an
            # out-of-office. receive_inbound reads the flag from the inbox it is given.
            data.inbox = copy.copy(inbox)
            data.inbox.auto_assign = False
        if parsed.auto == "bounce":
            bounced = find_bounced_reply(inbox.pk, parsed)
            if bounced is not None:
                data.customer = bounced.conversation.customer
                data.references = [*data.references, bounced.external_id]
        before = _thread_statuses(inbox, parsed) if parsed.auto == "autoreply" else {}
        result = receive_inbound(data)
        if bounced is not None and not result.duplicate:
            do_mark_bounced(message=bounced, reason=diagnostic(parsed), bounce_message_id=result.message.pk)
        if (
            not result.duplicate
            and before.get(result.conversation.pk, ConversationStatus.OPEN) != ConversationStatus.OPEN
        ):
            # An out-of-office is not the customer coming back: the conversation stays resolved (or
            # waiting) as the agent left it, instead of reappearing in everyone's open list.
            # (A bounce does reopen: the agent's answer did not arrive.)
            _restore_status(result.conversation, before[result.conversation.pk])
    return EmailIngestResult(
        result=result, auto=parsed.auto, bounced_message_id=bounced.pk if bounced is not None else None
    )


def _own_address(inbox: Inbox, address: str) -> bool:
    own = str((inbox.config or {}).get("from_address") or "").strip().lower()
    return bool(own) and own == address.strip().lower()


def keeps_original(parsed: ParsedEmail) -> bool:
    return any(d not in HARMLESS_DEFECTS for d in parsed.defects)


def _thread_statuses(inbox: Inbox, parsed: ParsedEmail) -> dict[int, str]:
    """Status of each conversation this message may thread into, before it is stored."""
    ids = set(
        Message.objects.filter(inbox=inbox, external_id__in=parsed.thread_references[-50:]).values_list(
            "conversation_id", flat=True
        )
    )
    if parsed.subject_ref:
        ids.add(parsed.subject_ref)
    return dict(Conversation.objects.filter(pk__in=ids, inbox=inbox).values_list("id", "status"))


def _restore_status(conversation: Conversation, status: str) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(status=status)
    conversation.status = status
    payload = {"type": "conversation.updated", "conversation": conversation.pk, "status": status,
               "assignee": conversation.assignee_id, "team": conversation.team_id}  # fmt: skip
    groups = {inbox_group(conversation.team_id), "conversations.all", conversation_group(conversation.pk)}

    def send() -> None:
        for group in groups:
            publish(group, payload)

    transaction.on_commit(send)
