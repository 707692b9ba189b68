"""POST /api/v1/conversations/email/inbound/{inbox_id}: one raw MIME message (an MTA or mail service
webhook). Authenticated with a write API key; mounted by `conversations/api.py`."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from ninja import Router, Schema
from ninja.responses import Status

from ecrm.core.api_auth import BearerKey, HeaderKey, require_write
from ecrm.core.exceptions import EcrmError, NotFound

from ...models import Inbox
from .inbound import MessageTooLarge, ingest_raw_email

router = Router(tags=["email"])

ACCEPTED_TYPES = {"message/rfc822", "application/octet-stream", "text/plain", ""}


class UnsupportedMediaType(EcrmError):
    code = "unsupported_media_type"
    status = 415


class RefusedAttachmentOut(Schema):
    filename: str
    size: int
    reason: str


class EmailInboundOut(Schema):
    conversation: int
    message: int
    duplicate: bool
    created_conversation: bool
    created_customer: bool
    auto: str | None
    refused_attachments: list[RefusedAttachmentOut]


@router.post(
    "/email/inbound/{inbox_id}",
    auth=[BearerKey(), HeaderKey()],  # integrations only: no cookie session, so no CSRF question
    response={200: EmailInboundOut, 201: EmailInboundOut},
    summary="Receive one raw email (message/rfc822)",
)
def inbound_email(request: HttpRequest, inbox_id: int):
    """201 when stored, 200 when this Message-ID was already stored; 413 over ECRM_MAX_RAW_EMAIL_BYTES,
    415 for a body that is not raw MIME, 422 for unusable mail (no sender)."""
    require_write(request)
    ctype = (request.content_type or "").lower()
    if ctype not in ACCEPTED_TYPES:
        raise UnsupportedMediaType(
            f"Send the raw message as message/rfc822, not {ctype}.", fields={"content_type": ctype}
        )
    limit = settings.ECRM_MAX_RAW_EMAIL_BYTES
    declared = int(request.META.get("CONTENT_LENGTH") or 0)
    if declared > limit:
        raise MessageTooLarge(f"The message is larger than {limit} bytes.", fields={"message": "too large"})
    # read the stream ourselves: request.body is capped by DATA_UPLOAD_MAX_MEMORY_SIZE (10 MB) and
    # mail with attachments is legitimately bigger
    raw = request.read(limit + 1)
    if len(raw) > limit:
        raise MessageTooLarge(f"The message is larger than {limit} bytes.", fields={"message": "too large"})
    inbox = Inbox.objects.filter(pk=inbox_id, kind="email", is_active=True).first()
    if inbox is None:
        raise NotFound("No such email inbox.")
    outcome = ingest_raw_email(inbox=inbox, raw=raw)
    result = outcome.result
    body = {
        "conversation": result.conversation.pk,
        "message": result.message.pk,
        "duplicate": result.duplicate,
        "created_conversation": result.created_conversation,
        "created_customer": result.created_customer,
        "auto": outcome.auto,
        "refused_attachments": outcome.refused_attachments,
    }
    return Status(200 if result.duplicate else 201, body)
