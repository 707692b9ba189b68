"""REST API of webhooks (mounted at /api/v1/webhooks): endpoints, the delivery log with replay, the
event catalogue and the outbound allow-list.

Everything here needs `webhooks.manage` (admins). Console sessions act as themselves; integration keys
act as the user who created them (read scope reads, write scope also writes), so the same permission
rules and the audit log apply.
"""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Query, Router, Status

from ecrm.core.events import EVENT_NAMES
from ecrm.core.exceptions import NotFound, PermissionDenied
from ecrm.core.models import ApiKey, User

from . import selectors, services
from .models import AllowedDestination, Delivery, Endpoint
from .schemas import (
    AllowedIn,
    AllowedOut,
    DeliveryDetailOut,
    DeliveryOut,
    DeliveryPageOut,
    DeliveryQuery,
    EndpointCreatedOut,
    EndpointIn,
    EndpointOut,
    EndpointPatch,
    EventNameOut,
    SecretOut,
)

router = Router(tags=["webhooks"])


def _principal(request: HttpRequest, *, write: bool) -> User:
    principal = request.auth
    if isinstance(principal, ApiKey):
        if write and not principal.allows_write():
            raise PermissionDenied("This API key is read-only.", code="read_only_key")
        owner = principal.created_by
        if owner is None or not owner.is_active:
            raise PermissionDenied("This API key has no active owner to act as.", code="key_without_owner")
        return owner
    if isinstance(principal, User):
        return principal
    raise PermissionDenied("Not allowed.")


def endpoint_out(e: Endpoint) -> dict:
    return {
        "id": e.pk, "name": e.name, "url": e.url, "events": list(e.events), "is_active": e.is_active,
        "consecutive_failures": e.consecutive_failures, "disabled_at": e.disabled_at,
        "disabled_reason": e.disabled_reason, "created_by": e.created_by.username if e.created_by else None,
        "created_at": e.created_at, "updated_at": e.updated_at,
    }  # fmt: skip


def delivery_out(d: Delivery) -> dict:
    return {
        "id": d.pk, "delivery_id": d.uid.hex, "endpoint_id": d.endpoint_id, "endpoint": d.endpoint.name,
        "event_id": d.event_id, "event_name": d.event_name, "status": d.status, "attempts": d.attempts,
        "next_attempt_at": d.next_attempt_at, "last_status": d.last_status, "error": d.error,
        "duration_ms": d.duration_ms, "created_at": d.created_at, "delivered_at": d.delivered_at,
    }  # fmt: skip


def allowed_out(a: AllowedDestination) -> dict:
    return {"id": a.pk, "value": a.value, "note": a.note, "created_at": a.created_at,
            "created_by": a.created_by.username if a.created_by else None}  # fmt: skip


@router.get("/events", response=list[EventNameOut], summary="The event names an endpoint can subscribe to")
def event_catalogue(request):
    selectors.list_endpoints(_principal(request, write=False))  # permission check only
    return [
        {"name": n, "subject_type": s, "data": d}
        for n, (s, d) in EVENT_NAMES.items()
        if n not in services.NOT_SENT
    ]


@router.get("/endpoints", response=list[EndpointOut], summary="List endpoints")
def list_endpoints(request):
    return [endpoint_out(e) for e in selectors.list_endpoints(_principal(request, write=False))]


@router.post(
    "/endpoints", response={201: EndpointCreatedOut}, summary="Create an endpoint (the secret is shown once)"
)
def create_endpoint(request, payload: EndpointIn):
    actor = _principal(request, write=True)
    e = services.do_create_endpoint(actor=actor, name=payload.name, url=payload.url, events=payload.events,
                                    is_active=payload.is_active)  # fmt: skip
    return Status(201, {**endpoint_out(e), "secret": e.secret})


@router.get("/endpoints/{int:endpoint_id}", response=EndpointOut, summary="One endpoint")
def get_endpoint(request, endpoint_id: int):
    return endpoint_out(selectors.access_endpoint_for_user(_principal(request, write=False), endpoint_id))


@router.patch("/endpoints/{int:endpoint_id}", response=EndpointOut, summary="Change an endpoint")
def update_endpoint(request, endpoint_id: int, payload: EndpointPatch):
    actor = _principal(request, write=True)
    e = selectors.access_endpoint_for_user(actor, endpoint_id)
    e = services.do_update_endpoint(actor=actor, endpoint=e, **payload.dict(exclude_unset=True))
    return endpoint_out(e)


@router.delete("/endpoints/{int:endpoint_id}", response={204: None}, summary="Delete an endpoint and its log")
def delete_endpoint(request, endpoint_id: int):
    actor = _principal(request, write=True)
    services.do_delete_endpoint(actor=actor, endpoint=selectors.access_endpoint_for_user(actor, endpoint_id))
    return Status(204, None)


@router.post("/endpoints/{int:endpoint_id}/rotate-secret", response=SecretOut, summary="New signing secret")
def rotate_secret(request, endpoint_id: int):
    actor = _principal(request, write=True)
    return {
        "secret": services.do_rotate_secret(
            actor=actor, endpoint=selectors.access_endpoint_for_user(actor, endpoint_id)
        )
    }


@router.post(
    "/endpoints/{int:endpoint_id}/enable", response=EndpointOut, summary="Re-enable a disabled endpoint"
)
def enable_endpoint(request, endpoint_id: int):
    actor = _principal(request, write=True)
    e = services.do_enable_endpoint(
        actor=actor, endpoint=selectors.access_endpoint_for_user(actor, endpoint_id)
    )
    return endpoint_out(e)


@router.post("/endpoints/{int:endpoint_id}/test", response=DeliveryOut, summary="Send a test delivery now")
def test_endpoint(request, endpoint_id: int):
    actor = _principal(request, write=True)
    d = services.do_send_test(actor=actor, endpoint=selectors.access_endpoint_for_user(actor, endpoint_id))
    return delivery_out(d)


@router.get("/deliveries", response=DeliveryPageOut, summary="The delivery log, newest first")
def list_deliveries(request, query: Query[DeliveryQuery]):
    qs = selectors.list_deliveries(_principal(request, write=False), endpoint_id=query.endpoint,
                                   status=query.status, event=query.event)  # fmt: skip
    items = list(qs[query.offset : query.offset + query.limit])
    return {"count": qs.count(), "items": [delivery_out(d) for d in items]}


@router.get(
    "/deliveries/{int:delivery_id}", response=DeliveryDetailOut, summary="One delivery with its attempts"
)
def get_delivery(request, delivery_id: int):
    d = selectors.access_delivery_for_user(_principal(request, write=False), delivery_id)
    attempts = [
        {"number": a.number, "manual": a.manual, "started_at": a.started_at, "url": a.url,
         "request_headers": a.request_headers, "status_code": a.status_code, "response_headers": a.response_headers,
         "response_excerpt": a.response_excerpt, "error": a.error, "duration_ms": a.duration_ms}
        for a in d.attempt_log.all()
    ]  # fmt: skip
    return {
        **delivery_out(d),
        "payload": d.payload,
        "response_excerpt": d.response_excerpt,
        "attempt_log": attempts,
    }


@router.post(
    "/deliveries/{int:delivery_id}/replay", response={202: DeliveryOut}, summary="Send a delivery again"
)
def replay_delivery(request, delivery_id: int):
    actor = _principal(request, write=True)
    d = services.do_replay_delivery(
        actor=actor, delivery=selectors.access_delivery_for_user(actor, delivery_id)
    )
    d.refresh_from_db()
    return Status(202, delivery_out(d))


@router.get("/allowlist", response=list[AllowedOut], summary="Admin-approved internal destinations")
def list_allowlist(request):
    return [allowed_out(a) for a in selectors.list_allowed_destinations(_principal(request, write=False))]


@router.post("/allowlist", response={201: AllowedOut}, summary="Allow an internal destination")
def add_allowlist(request, payload: AllowedIn):
    actor = _principal(request, write=True)
    entry = services.do_add_allowed_destination(actor=actor, value=payload.value, note=payload.note)
    return Status(201, allowed_out(entry))


@router.delete("/allowlist/{int:entry_id}", response={204: None}, summary="Withdraw an allowance")
def remove_allowlist(request, entry_id: int):
    actor = _principal(request, write=True)
    entry = selectors.list_allowed_destinations(actor).filter(pk=entry_id).first()
    if entry is None:
        raise NotFound("No such allow-list entry.")
    services.do_remove_allowed_destination(actor=actor, entry=entry)
    return Status(204, None)
