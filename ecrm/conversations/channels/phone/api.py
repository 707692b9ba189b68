"""POST /api/v1/conversations/phone/events/{inbox_id}: the CTI webhook (write key, optional HMAC)."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Status

from ecrm.core.api_auth import require_write

from .schemas import CallEventIn, CallEventOut
from .services import do_record_call_event
from .webhooks import read_signed_body, validate_item, webhook_inbox

router = Router(tags=["conversations: phone"])
MAX_EVENT_BYTES = 64 * 1024


@router.post(
    "/events/{int:inbox_id}",
    response={200: CallEventOut, 201: CallEventOut},
    summary="Record a call event (start, answer, end)",
    openapi_extra={
        "requestBody": {
            "content": {"application/json": {"schema": CallEventIn.model_json_schema(by_alias=True)}},
            "required": True,
        }
    },
)
def call_event(request: HttpRequest, inbox_id: int):
    """201 for a call's first event, 200 for a later one or a repeat (`status: duplicate`)."""
    require_write(request)
    inbox = webhook_inbox(inbox_id, "phone")
    event = validate_item(CallEventIn, read_signed_body(request, inbox, limit=MAX_EVENT_BYTES))
    result = do_record_call_event(inbox=inbox, event=event)
    call = result.call
    body = {
        "status": result.status, "call_id": call.call_id, "conversation": call.conversation_id,
        "customer": call.conversation.customer_id, "message": result.message.pk, "direction": call.direction,
        "customer_number": call.customer_number, "agent": call.agent.username if call.agent else None,
        "started_at": call.started_at, "answered_at": call.answered_at, "ended_at": call.ended_at,
        "duration_seconds": call.duration_seconds, "recording_url": call.recording_url,
    }  # fmt: skip
    return Status(201 if result.status == "created" else 200, body)
