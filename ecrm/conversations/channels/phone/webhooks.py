"""What every inbound channel webhook (phone, social) does before parsing: a size limit, the inbox
check, and the optional per-inbox HMAC signature over the raw body."""

from __future__ import annotations

import hmac
from typing import Any

import orjson
from django.http import HttpRequest
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from ecrm.core.exceptions import EcrmError, NotFound, ValidationFailed
from ecrm.core.http import sign

from ...models import Inbox
from ...services import get_inbox
from ..base import get_adapter


class BadSignature(EcrmError):
    code = "bad_signature"
    status = 401


class PayloadTooLarge(EcrmError):
    code = "payload_too_large"
    status = 413


def webhook_inbox(inbox_id: int, kind: str) -> Inbox:
    inbox = get_inbox(inbox_id)
    if inbox.kind != kind:
        raise NotFound(f"No such {kind} inbox.")
    return inbox


def read_signed_body(request: HttpRequest, inbox: Inbox, *, limit: int) -> Any:
    """The parsed JSON body after the size check and, when the inbox has a secret, the signature
    check (constant-time compare). Malformed JSON becomes a 400 in config/api.py."""
    declared = request.META.get("CONTENT_LENGTH")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit:,} bytes.")
    body = request.body
    if len(body) > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit:,} bytes.")
    secret = getattr(get_adapter(inbox.kind).config(inbox), "signing_secret", "")
    if secret:
        given = request.headers.get("X-Signature", "").strip().lower()
        if not given or not hmac.compare_digest(given.encode(), sign(secret, body).encode()):
            raise BadSignature("The X-Signature header is missing or does not match the body.")
    return orjson.loads(body)


def validate_item(schema: type[BaseModel], item: Any) -> BaseModel:
    """The validated item, or ValidationFailed with one entry per bad field (422 in the API)."""
    if not isinstance(item, dict):
        raise ValidationFailed("Each item must be a JSON object.", fields={"body": "must be an object"})
    try:
        return schema.model_validate(item)
    except PydanticValidationError as exc:
        fields = {".".join(str(p) for p in e["loc"]) or "body": e["msg"] for e in exc.errors()}
        raise ValidationFailed("The request does not match the schema.", fields=fields) from exc
