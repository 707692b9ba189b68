"""Writes of webhooks: endpoints, deliveries (queue, attempt, retry, replay), auto-disable, allow-list.

A delivery is created after the event's transaction commits, then sent by a background job through
`core/http.py` (SSRF guard, pinned address, timeouts). Failures retry with exponential backoff and
jitter; after `ECRM_WEBHOOK_MAX_ATTEMPTS` a delivery gives up, and after `ECRM_WEBHOOK_DISABLE_AFTER`
deliveries in a row gave up the endpoint is disabled and the admins are told.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
import time
from datetime import timedelta
from typing import Any

import orjson
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from ecrm.core import http
from ecrm.core.audit import record_audit, snapshot
from ecrm.core.events import EVENT_NAMES, Event
from ecrm.core.exceptions import NotFound, PermissionDenied, ValidationFailed  # noqa: F401  (re-exported)
from ecrm.core.permissions import check_perm

from . import selectors
from .models import (
    AllowedDestination,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Endpoint,
    matches,
    new_secret,
)

logger = logging.getLogger(__name__)

TEST_EVENT = "webhook.test"
NOT_SENT = frozenset({"schedule.tick"})  # internal clock events are never webhook material
EXCERPT_CHARS = 2000
# A claimed delivery is invisible to the sweep for this long, so two workers never send it at once; a
# worker killed mid-send leaves it to be retried after the lease.
LEASE = timedelta(minutes=5)
AUDITED = ["name", "url", "events", "is_active", "disabled_at", "disabled_reason"]


# --- signing -------------------------------------------------------------------------------------------


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=` + hex HMAC-SHA256 of f"{timestamp}.{body}" with the endpoint's secret (docs/webhooks.md)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


# --- endpoints -----------------------------------------------------------------------------------------


def check_events(events: list[str]) -> list[str]:
    """Exact catalogue names, prefixes ending in "." that match at least one name, or "*"."""
    clean: list[str] = []
    bad: list[str] = []
    for raw in events or []:
        name = str(raw).strip()
        if not name:
            continue
        names = [n for n in EVENT_NAMES if n not in NOT_SENT]
        ok = name == "*" or name in names or (name.endswith(".") and any(n.startswith(name) for n in names))
        (clean if ok else bad).append(name)
    if bad:
        raise ValidationFailed(
            _("Unknown event name: %(names)s") % {"names": ", ".join(bad)},
            fields={"events": _("Unknown event name: %(names)s") % {"names": ", ".join(bad)}},
        )
    if not clean:
        raise ValidationFailed(
            _("Choose at least one event."), fields={"events": _("Choose at least one event.")}
        )
    return sorted(set(clean))


def check_url(url: str) -> str:
    url = (url or "").strip()
    if not url:
        raise ValidationFailed(_("Enter the receiver's URL."), fields={"url": _("Enter the receiver's URL.")})
    if len(url) > 1000:
        raise ValidationFailed(_("The URL is too long."), fields={"url": _("The URL is too long.")})
    try:
        http.check_destination(url)
    except http.OutboundRefused as exc:
        msg = _("This destination is refused: %(why)s") % {"why": exc}
        raise ValidationFailed(msg, fields={"url": msg}) from exc
    return url


def _changed() -> None:
    # now (this process sees its own change) and again after commit (other processes read the new rows)
    selectors.bump(selectors.SUBS_VERSION_KEY)
    transaction.on_commit(lambda: selectors.bump(selectors.SUBS_VERSION_KEY))


def do_create_endpoint(*, actor, name: str, url: str, events: list[str], is_active: bool = True) -> Endpoint:
    check_perm(actor, "webhooks.manage")
    name = (name or "").strip()
    if not name:
        raise ValidationFailed(
            _("Give the endpoint a name."), fields={"name": _("Give the endpoint a name.")}
        )
    events = check_events(events)
    url = check_url(url)
    with transaction.atomic():
        endpoint = Endpoint.objects.create(
            name=name[:120], url=url, events=events, is_active=is_active, created_by=actor
        )
        record_audit(
            actor=actor, action="webhooks.endpoint.create", obj=endpoint, after=snapshot(endpoint, AUDITED)
        )
        _changed()
    return endpoint


def do_update_endpoint(*, actor, endpoint: Endpoint, **changes: Any) -> Endpoint:
    check_perm(actor, "webhooks.manage")
    with transaction.atomic():
        endpoint = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
        before = snapshot(endpoint, AUDITED)
        fields = []
        if changes.get("name") is not None:
            name = changes["name"].strip()
            if not name:
                msg = _("Give the endpoint a name.")
                raise ValidationFailed(msg, fields={"name": msg})
            endpoint.name = name[:120]
            fields.append("name")
        if changes.get("url") is not None:
            endpoint.url = check_url(changes["url"])
            fields.append("url")
        if changes.get("events") is not None:
            endpoint.events = check_events(changes["events"])
            fields.append("events")
        if changes.get("is_active") is not None and bool(changes["is_active"]) != endpoint.is_active:
            endpoint.is_active = bool(changes["is_active"])
            fields.append("is_active")
            if endpoint.is_active:
                endpoint.disabled_at, endpoint.disabled_reason, endpoint.consecutive_failures = None, "", 0
            else:
                endpoint.disabled_at, endpoint.disabled_reason = (
                    timezone.now(),
                    _("Disabled by %(who)s") % {"who": getattr(actor, "username", "system")},
                )
            fields += ["disabled_at", "disabled_reason", "consecutive_failures"]
        if fields:
            endpoint.save(update_fields=[*fields, "updated_at"])
            record_audit(actor=actor, action="webhooks.endpoint.update", obj=endpoint, before=before,
                         after=snapshot(endpoint, AUDITED))  # fmt: skip
            _changed()
    if changes.get("is_active"):
        _kick_due(endpoint.pk)
    return endpoint


def do_enable_endpoint(*, actor, endpoint: Endpoint) -> Endpoint:
    """Re-enable after an automatic (or manual) disable; its waiting deliveries go out again."""
    return do_update_endpoint(actor=actor, endpoint=endpoint, is_active=True)


def do_delete_endpoint(*, actor, endpoint: Endpoint) -> None:
    check_perm(actor, "webhooks.manage")
    with transaction.atomic():
        record_audit(
            actor=actor, action="webhooks.endpoint.delete", obj=endpoint, before=snapshot(endpoint, AUDITED)
        )
        endpoint.delete()
        _changed()


def do_rotate_secret(*, actor, endpoint: Endpoint) -> str:
    """A new signing secret, effective for the next attempt; returns it (shown once)."""
    check_perm(actor, "webhooks.manage")
    with transaction.atomic():
        endpoint.secret = new_secret()
        endpoint.save(update_fields=["secret", "updated_at"])
        # the secret itself never goes into the audit log
        record_audit(actor=actor, action="webhooks.endpoint.rotate_secret", obj=endpoint)
    return endpoint.secret


def do_reveal_secret(*, actor, endpoint: Endpoint) -> str:
    check_perm(actor, "webhooks.manage")
    record_audit(actor=actor, action="webhooks.endpoint.reveal_secret", obj=endpoint)
    return endpoint.secret


# --- deliveries ----------------------------------------------------------------------------------------


def _enqueue(delivery_ids: list[int]) -> None:
    """One background job for the deliveries of one event, after commit. One job, not one per delivery:
    the handler runs in the request that made the change, and each enqueue on the default SQLite queue
    costs a disk sync (~8 ms); the job attempts them one after the other, each failure isolated."""
    from .tasks import deliver, deliver_many

    if not delivery_ids:
        return
    ids = list(delivery_ids)
    transaction.on_commit(lambda: deliver(ids[0]) if len(ids) == 1 else deliver_many(ids))


def send_to_endpoint(endpoint_id: int, event_name: str, payload: dict) -> Delivery:
    """Queue `payload` (sent as the JSON body, unchanged) to one endpoint, whatever it subscribes to.

    The workflow rules' "call an outgoing webhook" action uses this. It goes out after the current
    transaction commits, with the usual signing and retries; returns the pending Delivery."""
    endpoint = Endpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None:
        raise NotFound("No such webhook endpoint.")
    event_name = (event_name or "").strip()[:64] or "workflow.action"
    now = timezone.now()
    payload = orjson.loads(orjson.dumps(payload, default=str))  # stored as plain JSON, as it will be sent
    delivery = Delivery.objects.create(
        endpoint=endpoint, event_name=event_name, event_id=str(payload.get("id", ""))[:64] if isinstance(payload, dict) else "",
        payload=payload, next_attempt_at=now, created_at=now, updated_at=now,
    )  # fmt: skip
    _enqueue([delivery.pk])
    return delivery


def on_event(event: Event) -> None:
    """Domain event handler (after commit): one delivery per active endpoint subscribed to it."""
    if event.name == TEST_EVENT or event.name in NOT_SENT:
        return
    targets = [pk for pk, patterns in selectors.active_subscriptions() if matches(patterns, event.name)]
    if not targets:
        return
    # the cached table may lag a change made in another process (or a rolled-back test): confirm
    targets = list(Endpoint.objects.filter(pk__in=targets, is_active=True).values_list("pk", flat=True))
    if not targets:
        return
    from .payloads import event_payload

    payload = orjson.loads(orjson.dumps(event_payload(event), default=str))
    now = timezone.now()
    deliveries = Delivery.objects.bulk_create(
        [
            Delivery(
                endpoint_id=pk,
                event_id=event.id,
                event_name=event.name,
                payload=payload,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
            for pk in targets
        ]  # fmt: skip
    )
    ids = [d.pk for d in deliveries if d.pk] or list(
        Delivery.objects.filter(event_id=event.id, endpoint_id__in=targets).values_list("pk", flat=True)
    )
    _enqueue(ids)


def do_send_test(*, actor, endpoint: Endpoint) -> Delivery:
    """Send a "webhook.test" ping now (in the request) so the admin sees the receiver's answer at once."""
    check_perm(actor, "webhooks.manage")
    now = timezone.now()
    delivery = Delivery.objects.create(
        endpoint=endpoint, event_name=TEST_EVENT, created_at=now, updated_at=now, next_attempt_at=now,
        payload={"name": TEST_EVENT, "endpoint": endpoint.pk, "occurred_at": now.isoformat(),
                 "data": {"message": "Test delivery from eCRM"}},
    )  # fmt: skip
    record_audit(actor=actor, action="webhooks.endpoint.test", obj=endpoint)
    attempt_delivery(delivery.pk, manual=True)
    delivery.refresh_from_db()
    return delivery


def do_replay_delivery(*, actor, delivery: Delivery) -> Delivery:
    """Send a delivery again: same payload and same X-Ecrm-Delivery id (receivers dedupe on it), as a new
    attempt, with a fresh retry budget."""
    check_perm(actor, "webhooks.manage")
    endpoint = delivery.endpoint
    if not endpoint.is_active:
        msg = _("The endpoint is disabled; re-enable it first.")
        raise ValidationFailed(msg, code="endpoint_disabled", fields={"endpoint": msg})
    now = timezone.now()
    with transaction.atomic():
        Delivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.PENDING, next_attempt_at=now, cycle_start=F("attempts"), updated_at=now
        )
        record_audit(actor=actor, action="webhooks.delivery.replay", obj=delivery)
    from .tasks import deliver

    transaction.on_commit(lambda: deliver(delivery.pk, manual=True))
    delivery.refresh_from_db()
    return delivery


def backoff_seconds(attempt: int) -> float:
    """Wait after the `attempt`-th failed attempt of a cycle (1-based): the schedule, +-10% jitter."""
    schedule = list(getattr(settings, "ECRM_WEBHOOK_RETRY_SCHEDULE", [60, 300, 1800, 7200, 21600]))
    base = schedule[min(attempt, len(schedule)) - 1]
    return base * random.uniform(0.9, 1.1)  # noqa: S311 - jitter, not security


def attempt_delivery(delivery_id: int, *, manual: bool = False, now=None) -> Delivery | None:
    """Claim a due delivery, POST it once, and record the outcome. Idempotent: a delivery that is not
    due (sent, given up, claimed by another worker, endpoint disabled) is left alone; returns None.
    `now` lets tests and the sweep say what time it is (a retry is due when next_attempt_at <= now)."""
    now = now or timezone.now()
    if not Delivery.objects.filter(pk=delivery_id, endpoint__is_active=True).exists():
        return None
    # The claim filters on the delivery's own columns only: a join here would make Django write
    # `WHERE id IN (subquery)`, and PostgreSQL does not re-check a subquery's conditions on the row
    # version it waited for, so two racing workers would both "claim" it (the concurrency test saw that).
    claimed = Delivery.objects.filter(
        pk=delivery_id,
        status__in=[DeliveryStatus.PENDING, DeliveryStatus.FAILED],
        next_attempt_at__lte=now,
    ).update(next_attempt_at=now + LEASE, updated_at=now)
    if not claimed:
        return None
    delivery = Delivery.objects.select_related("endpoint").get(pk=delivery_id)
    endpoint = delivery.endpoint
    number = delivery.attempts + 1
    body = orjson.dumps(delivery.payload)
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "eCRM-Webhooks/1",
        "X-Ecrm-Event": delivery.event_name,
        "X-Ecrm-Delivery": delivery.uid.hex,
        "X-Ecrm-Timestamp": timestamp,
        "X-Ecrm-Signature": signature(endpoint.secret, timestamp, body),
    }
    status_code: int | None = None
    resp_headers: dict[str, str] = {}
    excerpt = error = ""
    started = time.monotonic()
    try:
        resp = http.send("POST", endpoint.url, body=body, headers=headers,
                         timeout=float(getattr(settings, "ECRM_WEBHOOK_TIMEOUT", 10.0)),
                         max_redirects=0, max_bytes=64 * 1024)  # fmt: skip
        status_code, resp_headers = resp.status, dict(resp.headers)
        excerpt = resp.body[:EXCERPT_CHARS].decode("utf-8", "replace")
        ok = 200 <= resp.status < 300
        if not ok:
            error = f"HTTP {resp.status}"
    except http.OutboundRefused as exc:
        ok, error = False, f"refused: {exc}"
    except (OSError, ValueError) as exc:  # timeouts, connection refused, TLS, bad response
        ok, error = False, f"{type(exc).__name__}: {exc}"
    duration = int((time.monotonic() - started) * 1000)
    done_at = now + timedelta(milliseconds=duration)
    shown_headers = {k: (v if k != "X-Ecrm-Signature" else v[:14] + "…") for k, v in headers.items()}
    gave_up = False
    with transaction.atomic():
        DeliveryAttempt.objects.create(
            delivery=delivery, number=number, manual=manual, started_at=now, url=endpoint.url,
            request_headers=shown_headers, status_code=status_code, response_headers=resp_headers,
            response_excerpt=excerpt, error=error[:2000], duration_ms=duration,
        )  # fmt: skip
        fields = dict(attempts=number, last_status=status_code, response_excerpt=excerpt, error=error[:2000],
                      duration_ms=duration, updated_at=done_at)  # fmt: skip
        if ok:
            fields.update(status=DeliveryStatus.SUCCEEDED, next_attempt_at=None, delivered_at=done_at)
        else:
            in_cycle = number - delivery.cycle_start
            if in_cycle >= max(1, int(getattr(settings, "ECRM_WEBHOOK_MAX_ATTEMPTS", 6))):
                gave_up = True
                fields.update(status=DeliveryStatus.GIVING_UP, next_attempt_at=None)
            else:
                fields.update(status=DeliveryStatus.FAILED,
                              next_attempt_at=done_at + timedelta(seconds=backoff_seconds(in_cycle)))  # fmt: skip
        Delivery.objects.filter(pk=delivery.pk).update(**fields)
        if ok:
            Endpoint.objects.filter(pk=endpoint.pk, consecutive_failures__gt=0).update(consecutive_failures=0)
        elif gave_up:
            Endpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=F("consecutive_failures") + 1)
            _maybe_disable(endpoint.pk, error)
    delivery.refresh_from_db()
    return delivery


def _maybe_disable(endpoint_id: int, error: str) -> None:
    limit = max(1, int(getattr(settings, "ECRM_WEBHOOK_DISABLE_AFTER", 5)))
    now = timezone.now()
    reason = _("%(n)s deliveries in a row failed; last error: %(error)s") % {"n": limit, "error": error[:200]}
    # conditional update: exactly one worker disables it and tells the admins
    if not Endpoint.objects.filter(pk=endpoint_id, is_active=True, consecutive_failures__gte=limit).update(
        is_active=False, disabled_at=now, disabled_reason=reason[:300], updated_at=now
    ):
        return
    endpoint = Endpoint.objects.get(pk=endpoint_id)
    record_audit(actor=None, action="webhooks.endpoint.auto_disable", obj=endpoint,
                 after={"is_active": False, "disabled_reason": endpoint.disabled_reason})  # fmt: skip
    _changed()
    transaction.on_commit(lambda: _notify_admins(endpoint))


def _notify_admins(endpoint: Endpoint) -> None:
    from ecrm.core.consumers import publish, user_group
    from ecrm.core.models import User
    from ecrm.core.permissions import has_perm

    payload = {
        "type": "notice", "level": "warning", "kind": "webhook.disabled", "endpoint": endpoint.pk,
        "message": _("Webhook endpoint “%(name)s” was disabled: %(reason)s")
        % {"name": endpoint.name, "reason": endpoint.disabled_reason},
        "url": f"/webhooks/{endpoint.pk}/",
    }  # fmt: skip
    for user in User.objects.filter(is_active=True):
        if has_perm(user, "webhooks.manage"):
            try:
                publish(user_group(user.pk), payload)
            except Exception:  # a live-update hiccup must not undo the disable
                logger.exception("could not notify user %s", user.pk)


def due_delivery_ids(*, now=None, limit: int = 500) -> list[int]:
    now = now or timezone.now()
    return list(
        Delivery.objects.filter(
            status__in=[DeliveryStatus.PENDING, DeliveryStatus.FAILED],
            next_attempt_at__lte=now,
            endpoint__is_active=True,
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def _kick_due(endpoint_id: int) -> None:
    ids = list(
        Delivery.objects.filter(
            endpoint_id=endpoint_id,
            status__in=[DeliveryStatus.PENDING, DeliveryStatus.FAILED],
            next_attempt_at__lte=timezone.now(),
        ).values_list("pk", flat=True)[:500]
    )
    if ids:
        _enqueue(ids)


# --- the admin-managed allow-list ----------------------------------------------------------------------


def _allow_changed() -> None:
    # now (this process sees its own change) and again after commit (other processes read the new rows)
    selectors.bump(selectors.ALLOW_VERSION_KEY)
    transaction.on_commit(lambda: selectors.bump(selectors.ALLOW_VERSION_KEY))


def do_add_allowed_destination(*, actor, value: str, note: str = "") -> AllowedDestination:
    check_perm(actor, "webhooks.manage")
    try:
        value = http.normalise_allow_entry(value)
    except ValueError as exc:
        raise ValidationFailed(str(exc), fields={"value": str(exc)}) from exc
    if AllowedDestination.objects.filter(value=value).exists():
        msg = _("Already allowed.")
        raise ValidationFailed(msg, fields={"value": msg})
    with transaction.atomic():
        entry = AllowedDestination.objects.create(value=value, note=(note or "")[:200], created_by=actor)
        record_audit(
            actor=actor,
            action="webhooks.allowlist.add",
            obj=entry,
            after={"value": value, "note": entry.note},
        )
        _allow_changed()
    return entry


def do_remove_allowed_destination(*, actor, entry: AllowedDestination) -> None:
    check_perm(actor, "webhooks.manage")
    with transaction.atomic():
        record_audit(
            actor=actor, action="webhooks.allowlist.remove", obj=entry, before={"value": entry.value}
        )
        entry.delete()
        _allow_changed()


def env_allowlist() -> list[str]:
    """The part of the allow-list set by the deployment (ECRM_OUTBOUND_ALLOWLIST), shown read-only."""
    return list(getattr(settings, "ECRM_OUTBOUND_ALLOWLIST", []) or [])
