"""The tracking API: /track (one event), /batch (up to 1,000 events and identify calls), /identify,
and /t, the browser tracker's endpoint (text/plain bodies, key in the body or ?key=, CORS).

These handlers read the body themselves instead of declaring a ninja body parameter: the size limit
must be checked before any parsing (a clear 413, not a parser running over 50 MB), and a batch is
validated item by item so that the good items are stored while the bad ones are reported.

Batch answers are HTTP 200 whenever the request itself is acceptable (key, size, JSON, envelope), with
a summary and one result per item: `{"index": 3, "status": "error", "errors": {"occurred_at": "..."}}`.
A sender retries only the items marked `error` after fixing them; `duplicate` means already stored.
"""

from __future__ import annotations

from typing import Any

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Router
from pydantic import ValidationError as PydanticValidationError

from ecrm.core.api_auth import actor_of, require_track
from ecrm.core.exceptions import EcrmError, PermissionDenied, ValidationFailed
from ecrm.core.models import ApiKey
from ecrm.core.services import authenticate_api_key

from .schemas import (
    IDENTIFY_ADAPTER,
    BatchIn,
    BatchOut,
    EventIn,
    IdentifyIn,
    IdentifyOut,
    TrackerBatchIn,
    TrackOut,
    error_fields,
    inline_json_schema,
    item_rule_errors,
)
from .services import do_identify, do_ingest_batch, do_track_event

router = Router(tags=["ingest"])


class PayloadTooLarge(EcrmError):
    code = "payload_too_large"
    status = 413


def read_json_body(request: HttpRequest, limit: int) -> Any:
    """The parsed JSON body; 413 past `limit` bytes (judged from Content-Length before reading when the
    client sent one), 400 for malformed JSON (orjson's error, mapped in config/api.py)."""
    declared = request.META.get("CONTENT_LENGTH")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The request body is {int(declared):,} bytes; the limit is {limit:,} bytes.")
    body = request.body
    if len(body) > limit:
        raise PayloadTooLarge(f"The request body is {len(body):,} bytes; the limit is {limit:,} bytes.")
    return orjson.loads(body)


def batch_items(payload: Any, *, allowed: frozenset[str] = frozenset({"batch", "sent_at"})) -> list[Any]:
    """The item list of a batch envelope, or a 422/413 for the envelope itself."""
    if not isinstance(payload, dict):
        raise ValidationFailed(
            "The body must be an object with a `batch` list.", fields={"body": "must be an object"}
        )
    unknown = sorted(set(payload) - allowed)
    if unknown:
        raise ValidationFailed(
            "Unknown fields in the batch envelope.",
            fields={k: "Extra inputs are not permitted" for k in unknown},
        )
    items = payload.get("batch")
    if not isinstance(items, list):
        raise ValidationFailed("`batch` must be a list of events.", fields={"batch": "must be a list"})
    limit = settings.ECRM_MAX_BATCH_ITEMS
    if len(items) > limit:
        raise PayloadTooLarge(
            f"A batch holds at most {limit:,} items; this one has {len(items):,}.", code="too_many_items"
        )
    return items


def _may_overwrite(principal: Any) -> bool:
    # Tracking keys are public (they sit in the shop's page source): they may add what a profile
    # lacks but never rewrite what it has.
    return not (isinstance(principal, ApiKey) and not principal.allows_write())


def _json(data: Any, status: int = 200) -> HttpResponse:
    # Returned directly: ninja would otherwise re-validate up to 1,000 result objects per batch.
    return HttpResponse(orjson.dumps(data), status=status, content_type="application/json")


def _body_doc(model, content_type: str = "application/json") -> dict:
    return {
        "requestBody": {"required": True, "content": {content_type: {"schema": inline_json_schema(model)}}}
    }


_ERROR_RESPONSES = {
    "400": {"description": "Malformed JSON."},
    "401": {"description": "Missing, unknown or revoked API key."},
    "403": {"description": "The key may not send events (read-only key)."},
    "413": {"description": "Body over the size limit, or more than 1,000 items."},
    "422": {"description": "Schema errors, with `fields` keyed by dotted field path."},
}


@router.post(
    "/track",
    response={200: TrackOut},
    summary="Send one event",
    description="Stores one event. A repeated `event_id` answers `status: duplicate` and is not stored "
    "again. Body limit: ECRM_MAX_EVENT_BYTES (64 KiB).",
    openapi_extra={**_body_doc(EventIn), "responses": _ERROR_RESPONSES},
)
def track(request: HttpRequest):
    require_track(request)
    data = read_json_body(request, settings.ECRM_MAX_EVENT_BYTES)
    result = do_track_event(data=data, actor=actor_of(request), source="api")
    return _json({"status": result.status, "event_id": result.event_id, "customer_id": result.customer_id})


@router.post(
    "/batch",
    response={200: BatchOut},
    summary="Send up to 1,000 events and identify calls",
    description="Each item is an event (`type`: page, track, product_view, add_to_cart, checkout, …) or an "
    "identify call (`type: identify`). Valid items are stored even when others are not; the answer "
    "(HTTP 200) has a summary and one result per item, in order, with `errors` by field path for the "
    "refused ones. Limits: 1,000 items and ECRM_MAX_BATCH_BYTES (5 MiB) per request, "
    "ECRM_MAX_EVENT_BYTES (64 KiB) per item.",
    openapi_extra={**_body_doc(BatchIn), "responses": _ERROR_RESPONSES},
)
def batch(request: HttpRequest):
    require_track(request)
    items = batch_items(read_json_body(request, settings.ECRM_MAX_BATCH_BYTES))
    principal = actor_of(request)
    outcome = do_ingest_batch(items=items, actor=principal, source="api", overwrite=_may_overwrite(principal))
    return _json(outcome.as_dict())


@router.post(
    "/identify",
    response={200: IdentifyOut},
    summary="Say who a visitor is",
    description="Resolves or creates the customer named by user_id/email/phone (and traits), links the "
    "`anonymous_id` to them and moves that visitor's earlier anonymous events onto the customer.",
    openapi_extra={**_body_doc(IdentifyIn), "responses": _ERROR_RESPONSES},
)
def identify(request: HttpRequest):
    require_track(request)
    payload = read_json_body(request, settings.ECRM_MAX_EVENT_BYTES)
    if not isinstance(payload, dict):
        raise ValidationFailed("The body must be an object.", fields={"body": "must be an object"})
    try:
        item = IDENTIFY_ADAPTER.validate_python({"type": "identify", **payload})
    except PydanticValidationError as exc:
        raise ValidationFailed("The identify call is not valid.", fields=error_fields(exc)) from exc
    errors = item_rule_errors(item, timezone.now())
    if errors:
        raise ValidationFailed("The identify call is not valid.", fields=errors)
    principal = actor_of(request)
    outcome = do_identify(
        anonymous_id=item.anonymous_id,
        user_id=item.user_id,
        email=item.email,
        phone=item.phone,
        traits=item.traits,
        actor=principal,
        source="api",
        overwrite=_may_overwrite(principal),
        occurred_at=item.occurred_at,
    )
    return _json(
        {
            "customer_id": outcome.customer.pk,
            "created": outcome.created,
            "events_moved": outcome.events_moved,
            "attached": [f"{kind}:{value}" for kind, value in outcome.attached],
        }
    )


# --- The browser tracker's endpoint


def _cors(response: HttpResponse) -> HttpResponse:
    # Any shop origin may post events with a tracking key; no cookies are involved, so `*` is safe.
    response["Access-Control-Allow-Origin"] = "*"
    response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
    response["Access-Control-Allow-Headers"] = "Content-Type"
    response["Access-Control-Max-Age"] = "86400"
    return response


def _error(status: int, code: str, message: str, fields: dict | None = None) -> HttpResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return _json(body, status=status)


@router.api_operation(
    ["POST", "OPTIONS"],
    "/t",
    auth=None,
    response={200: BatchOut},
    summary="Browser tracker endpoint",
    description="What `/static/ecrm/js/tracker.js` posts to, with navigator.sendBeacon or fetch. Accepts a "
    "`text/plain` body (so browsers send it without a CORS preflight) holding the same envelope as "
    "/batch plus `key`, a tracking-scope API key (or pass it as `?key=`). Answers CORS preflights.",
    openapi_extra=_body_doc(TrackerBatchIn, "text/plain"),
)
def tracker_collect(request: HttpRequest):
    if request.method == "OPTIONS":
        return _cors(HttpResponse(status=204))
    try:
        payload = read_json_body(request, settings.ECRM_MAX_BATCH_BYTES)
        raw_key = request.GET.get("key") or (payload.get("key") if isinstance(payload, dict) else None)
        key = authenticate_api_key(raw_key if isinstance(raw_key, str) else "")
        if key is None:
            response = _error(401, "unauthorized", "A valid, unrevoked tracking key is required.")
        elif not key.allows_track():
            raise PermissionDenied("This key may not send events.", code="read_only_key")
        else:
            items = batch_items(payload, allowed=frozenset({"batch", "sent_at", "key"}))
            outcome = do_ingest_batch(items=items, actor=key, source="tracker", overwrite=_may_overwrite(key))
            response = _json(outcome.as_dict())
    except orjson.JSONDecodeError as exc:
        response = _error(400, "malformed_json", f"Malformed JSON: {exc}")
    except EcrmError as exc:
        response = _error(exc.status, exc.code, exc.message, exc.fields)
    return _cors(response)
