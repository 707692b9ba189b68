"""POST /api/v1/conversations/social/inbound/{inbox_id}: mentions and direct messages (write key,
optional HMAC). The body is one message object, or a list of up to 100: a list is answered 200 with
one result per item (`{"index", "status": "created"|"duplicate"|"error", "errors"}`), so a connector
retries only the items that failed."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router, Status

from ecrm.core.api_auth import require_write
from ecrm.core.exceptions import EcrmError, ValidationFailed

from ..phone.webhooks import read_signed_body, validate_item, webhook_inbox
from .schemas import SocialMessageIn, SocialResultOut
from .services import do_receive_social

router = Router(tags=["conversations: social"])
MAX_ITEMS = 100
MAX_BYTES = 2 * 1024 * 1024


def _result(result) -> dict[str, Any]:
    return {
        "status": "duplicate" if result.duplicate else "created",
        "conversation": result.conversation.pk,
        "customer": result.conversation.customer_id,
        "message": result.message.pk,
        "created_customer": result.created_customer,
    }


@router.post(
    "/inbound/{int:inbox_id}",
    response={200: Any, 201: SocialResultOut},
    summary="Receive social mentions and direct messages",
    openapi_extra={
        "requestBody": {
            "content": {"application/json": {"schema": SocialMessageIn.model_json_schema()}},
            "required": True,
        }
    },
)
def inbound(request: HttpRequest, inbox_id: int):
    require_write(request)
    inbox = webhook_inbox(inbox_id, "social")
    payload = read_signed_body(request, inbox, limit=MAX_BYTES)
    if not isinstance(payload, list):
        item = validate_item(SocialMessageIn, payload)
        result = do_receive_social(inbox=inbox, item=item)
        return Status(200 if result.duplicate else 201, _result(result))
    if not payload or len(payload) > MAX_ITEMS:
        raise ValidationFailed(
            f"Send 1 to {MAX_ITEMS} messages in a list.", fields={"body": f"1 to {MAX_ITEMS} items"}
        )
    results = []
    for index, raw in enumerate(payload):
        try:
            item = validate_item(SocialMessageIn, raw)
            results.append({"index": index, **_result(do_receive_social(inbox=inbox, item=item))})
        except EcrmError as exc:
            results.append({"index": index, "status": "error", "message": exc.message, "errors": exc.fields})
    counts = {s: sum(1 for r in results if r["status"] == s) for s in ("created", "duplicate", "error")}
    return Status(200, {**counts, "results": results})
