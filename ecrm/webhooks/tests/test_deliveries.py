"""Deliveries against a real local receiver: signed as documented, retried with backoff after a failure,
replayed from the log with the same id, given up, and the endpoint disabled after repeated failures."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import time

import orjson
import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

from ecrm.core.consumers import user_group
from ecrm.core.models import AuditLog
from ecrm.core.tests.http_testserver import Reply
from ecrm.webhooks import services
from ecrm.webhooks.models import Delivery, DeliveryStatus, Endpoint
from ecrm.webhooks.tasks import send_due


def verify(secret: str, headers, body: bytes, tolerance: int = 300) -> bool:
    """The receiver's check, exactly as docs/webhooks.md shows it."""
    timestamp = headers["X-Ecrm-Timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False  # too old (or from the future): a replayed capture
    signed = timestamp.encode() + b"." + body
    expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["X-Ecrm-Signature"])


def test_send_to_endpoint_posts_the_payload_signed_as_documented(
    endpoint, receiver, django_capture_on_commit_callbacks
):
    ep = endpoint()
    with django_capture_on_commit_callbacks(execute=True):
        delivery = services.send_to_endpoint(ep.pk, "ticket.escalated", {"ticket": 7, "note": "超时"})
        assert delivery.status == DeliveryStatus.PENDING and receiver.requests == []  # only after commit
    [req] = receiver.requests
    assert req.method == "POST" and req.path == "/hook"
    assert orjson.loads(req.body) == {"ticket": 7, "note": "超时"}
    assert req.headers["X-Ecrm-Event"] == "ticket.escalated"
    assert req.headers["X-Ecrm-Delivery"] == delivery.uid.hex
    assert req.headers["Content-Type"] == "application/json"
    assert verify(ep.secret, req.headers, req.body)
    assert not verify("whsec_wrong", req.headers, req.body)
    assert not verify(ep.secret, req.headers, req.body + b" ")
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status) == (DeliveryStatus.SUCCEEDED, 1, 200)
    assert delivery.delivered_at is not None and delivery.response_excerpt == "ok"


def test_a_500_is_retried_with_backoff_and_then_succeeds(
    endpoint, receiver, django_capture_on_commit_callbacks
):
    ep = endpoint()
    receiver.replies = [Reply(500, b"database down"), Reply(200, b"thanks")]
    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        delivery = services.send_to_endpoint(ep.pk, "order.sync", {"order": 1})
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status) == (DeliveryStatus.FAILED, 1, 500)
    assert delivery.error == "HTTP 500" and delivery.response_excerpt == "database down"
    wait = (delivery.next_attempt_at - before).total_seconds()
    assert 54 <= wait <= 67  # 1 minute +-10% jitter
    # not due yet: the sweep leaves it alone
    assert send_due() == 0 and len(receiver.requests) == 1
    assert send_due(now=delivery.next_attempt_at + dt.timedelta(seconds=1)) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status) == (DeliveryStatus.SUCCEEDED, 2, 200)
    first, second = receiver.requests
    assert first.body == second.body
    assert first.headers["X-Ecrm-Delivery"] == second.headers["X-Ecrm-Delivery"] == delivery.uid.hex
    assert verify(ep.secret, second.headers, second.body)
    assert [(a.number, a.status_code, a.error) for a in delivery.attempt_log.all()] == [
        (1, 500, "HTTP 500"),
        (2, 200, ""),
    ]


def test_the_schedule_backs_off_and_gives_up(
    endpoint, receiver, settings, django_capture_on_commit_callbacks
):
    settings.ECRM_WEBHOOK_MAX_ATTEMPTS = 3
    ep = endpoint()
    receiver.replies = [Reply(503, b"")] * 5
    with django_capture_on_commit_callbacks(execute=True):
        delivery = services.send_to_endpoint(ep.pk, "order.sync", {"order": 1})
    waits = []
    for _ in range(2):
        delivery.refresh_from_db()
        waits.append((delivery.next_attempt_at - delivery.updated_at).total_seconds())
        send_due(now=delivery.next_attempt_at)
    delivery.refresh_from_db()
    assert 54 <= waits[0] <= 66 and 270 <= waits[1] <= 330  # 1 min, then 5 min (+-10%)
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (
        DeliveryStatus.GIVING_UP,
        3,
        None,
    )
    assert send_due(now=timezone.now() + dt.timedelta(days=2)) == 0 and len(receiver.requests) == 3


def test_a_refused_or_unreachable_receiver_is_a_failed_attempt_not_a_crash(
    cast, settings, django_capture_on_commit_callbacks
):
    settings.ECRM_OUTBOUND_ALLOWLIST = ["127.0.0.1:9"]  # discard port: nothing listens
    ep = services.do_create_endpoint(
        actor=cast["admin"], name="Down", url="http://127.0.0.1:9/", events=["*"]
    )
    with django_capture_on_commit_callbacks(execute=True):
        delivery = services.send_to_endpoint(ep.pk, "x.y", {})
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and "ConnectionRefused" in delivery.error
    settings.ECRM_OUTBOUND_ALLOWLIST = []  # the admin withdrew the allowance: the next attempt is refused
    send_due(now=delivery.next_attempt_at)
    delivery.refresh_from_db()
    assert delivery.attempts == 2 and delivery.error.startswith("refused:")


def test_replay_from_the_log_resends_the_same_payload_and_delivery_id(
    endpoint, receiver, cast, django_capture_on_commit_callbacks
):
    ep = endpoint(events=["ticket."])
    with django_capture_on_commit_callbacks(execute=True):
        delivery = services.send_to_endpoint(
            ep.pk, "ticket.created", {"ticket": 1, "subject": "Broken kettle"}
        )
    with django_capture_on_commit_callbacks(execute=True):
        services.do_replay_delivery(actor=cast["admin"], delivery=delivery)
    first, again = receiver.requests
    assert again.body == first.body and again.headers["X-Ecrm-Delivery"] == first.headers["X-Ecrm-Delivery"]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SUCCEEDED, 2)
    assert [a.manual for a in delivery.attempt_log.all()] == [False, True]
    assert AuditLog.objects.filter(action="webhooks.delivery.replay", object_id=str(delivery.pk)).count() == 1


def test_an_attempt_is_claimed_so_a_second_worker_does_not_send_it_again(endpoint, receiver):
    ep = endpoint()
    now = timezone.now()
    d = Delivery.objects.create(endpoint=ep, event_name="x.y", payload={"n": 1}, next_attempt_at=now)
    assert services.attempt_delivery(d.pk) is not None
    assert services.attempt_delivery(d.pk) is None
    assert send_due(now=now + dt.timedelta(hours=1)) == 0
    assert len(receiver.requests) == 1


def test_repeated_failures_disable_the_endpoint_until_an_admin_re_enables_it(
    endpoint, receiver, cast, settings, django_capture_on_commit_callbacks
):
    settings.ECRM_WEBHOOK_MAX_ATTEMPTS = 1
    settings.ECRM_WEBHOOK_DISABLE_AFTER = 3
    ep = endpoint()
    layer = get_channel_layer()
    async_to_sync(layer.group_add)(user_group(cast["admin"].pk), "admin-browser")
    receiver.replies = [Reply(500, b"")] * 3
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(3):
            services.send_to_endpoint(ep.pk, "order.sync", {"n": n})
    ep.refresh_from_db()
    assert (ep.is_active, ep.consecutive_failures) == (False, 3)
    notice = async_to_sync(asyncio.wait_for)(layer.receive("admin-browser"), 2)
    assert notice["payload"]["kind"] == "webhook.disabled" and notice["payload"]["endpoint"] == ep.pk
    assert ep.disabled_at is not None and "3 deliveries in a row failed" in ep.disabled_reason
    assert AuditLog.objects.filter(action="webhooks.endpoint.auto_disable", object_id=str(ep.pk)).count() == 1
    # while disabled nothing goes out, and the delivery waits
    with django_capture_on_commit_callbacks(execute=True):
        waiting = services.send_to_endpoint(ep.pk, "order.sync", {"n": 99})
    assert len(receiver.requests) == 3 and send_due() == 0
    with pytest.raises(services.ValidationFailed):
        services.do_replay_delivery(actor=cast["admin"], delivery=waiting)
    with django_capture_on_commit_callbacks(execute=True):
        services.do_enable_endpoint(actor=cast["admin"], endpoint=ep)
    ep.refresh_from_db()
    assert (ep.is_active, ep.consecutive_failures, ep.disabled_at) == (True, 0, None)
    waiting.refresh_from_db()
    assert waiting.status == DeliveryStatus.SUCCEEDED and orjson.loads(receiver.requests[-1].body) == {
        "n": 99
    }


def test_a_success_resets_the_failure_streak(
    endpoint, receiver, settings, django_capture_on_commit_callbacks
):
    settings.ECRM_WEBHOOK_MAX_ATTEMPTS = 1
    settings.ECRM_WEBHOOK_DISABLE_AFTER = 2
    ep = endpoint()
    receiver.replies = [Reply(500), Reply(200), Reply(500)]
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(3):
            services.send_to_endpoint(ep.pk, "order.sync", {"n": n})
    ep.refresh_from_db()
    assert (ep.is_active, ep.consecutive_failures) == (True, 1)


def test_test_send_reports_the_receivers_answer(endpoint, receiver, cast):
    ep = endpoint()
    receiver.replies = [Reply(418, b"I'm a teapot")]
    delivery = services.do_send_test(actor=cast["admin"], endpoint=ep)
    assert (delivery.event_name, delivery.status, delivery.last_status) == ("webhook.test", "failed", 418)
    assert delivery.response_excerpt == "I'm a teapot"
    assert receiver.requests[0].headers["X-Ecrm-Event"] == "webhook.test"


def test_rotating_the_secret_signs_later_deliveries_with_the_new_one(
    endpoint, receiver, cast, django_capture_on_commit_callbacks
):
    ep = endpoint()
    old = ep.secret
    new = services.do_rotate_secret(actor=cast["admin"], endpoint=ep)
    assert new != old and new.startswith("whsec_")
    with django_capture_on_commit_callbacks(execute=True):
        services.send_to_endpoint(ep.pk, "x.y", {})
    req = receiver.requests[0]
    assert verify(new, req.headers, req.body) and not verify(old, req.headers, req.body)
    log = AuditLog.objects.get(action="webhooks.endpoint.rotate_secret")
    assert new not in orjson.dumps([log.before, log.after]).decode()


def test_only_admins_manage_endpoints(cast, receiver):
    for who in ("manager", "agent_li", "nobody"):
        with pytest.raises(services.PermissionDenied):
            services.do_create_endpoint(actor=cast[who], name="x", url=receiver.url, events=["*"])
    assert Endpoint.objects.count() == 0
