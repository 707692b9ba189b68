"""POST /api/v1/conversations/callback/{inbox_id}: the shop books a callback (write key)."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Status

from ecrm.core.api_auth import require_write
from ecrm.customers.services import get_customer_or_404

from ...services import get_inbox
from .schemas import CallbackIn, CallbackOut
from .services import do_request_callback

router = Router(tags=["conversations: callbacks"])


@router.post("/{int:inbox_id}", response={201: CallbackOut}, summary="Book a callback")
def book_callback(request: HttpRequest, inbox_id: int, payload: CallbackIn):
    require_write(request)
    inbox = get_inbox(inbox_id)
    customer = get_customer_or_404(payload.customer_id) if payload.customer_id is not None else None
    callback = do_request_callback(
        inbox=inbox, phone=payload.phone, requested_for=payload.requested_for, name=payload.name,
        email=payload.email, note=payload.note, customer=customer, source="api",
    )  # fmt: skip
    conv = callback.conversation
    body = {
        "id": callback.pk, "conversation": conv.pk, "customer": conv.customer_id, "phone": callback.phone,
        "requested_for": callback.requested_for, "status": callback.status, "assignee": callback.assignee_id,
    }  # fmt: skip
    return Status(201, body)
