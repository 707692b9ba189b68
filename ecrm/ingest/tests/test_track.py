"""POST /api/v1/track: one event, stored once per event id, with identity resolution."""

from __future__ import annotations

import datetime as dt

import pytest

from ecrm.core.models import AuditLog
from ecrm.customers.models import Customer, Identity
from ecrm.ingest.models import Event

pytestmark = pytest.mark.django_db


def _customer(email="li@example.com", external="u-1", phone=None):
    c = Customer.objects.create(display_name="Li Wei", email=email)
    Identity.objects.create(customer=c, kind="email", value=email)
    if external:
        Identity.objects.create(customer=c, kind="external", value=external)
    if phone:
        Identity.objects.create(customer=c, kind="phone", value=phone)
    return c


def test_stores_event_with_all_fields(api):
    resp = api.post(
        "/api/v1/track",
        {
            "event_id": "e-1",
            "type": "product_view",
            "anonymous_id": "anon-1",
            "properties": {"sku": "KN-01", "price": "199.00"},
            "context": {"page": {"url": "https://shop.example/p/kn-01"}},
            "occurred_at": "2025-03-01T10:00:00+08:00",
        },
    )
    assert resp.status_code == 200, resp.content
    assert resp.json() == {"status": "ok", "event_id": "e-1", "customer_id": None}
    event = Event.objects.get()
    assert (event.event_id, event.type, event.name, event.anonymous_id, event.customer_id) == (
        "e-1", "product_view", "", "anon-1", None,
    )  # fmt: skip
    assert event.properties == {"sku": "KN-01", "price": "199.00"}
    assert event.context == {"page": {"url": "https://shop.example/p/kn-01"}}
    assert event.occurred_at == dt.datetime(2025, 3, 1, 2, 0, tzinfo=dt.UTC)
    assert event.source == "api"
    # Events are data, not edits: no audit rows.
    assert AuditLog.objects.filter(action__startswith="event").count() == 0


def test_repeated_event_id_is_acknowledged_and_stored_once(api):
    body = {"event_id": "same", "type": "page", "anonymous_id": "a1"}
    first = api.post("/api/v1/track", body)
    second = api.post("/api/v1/track", {**body, "properties": {"changed": True}})
    assert first.json()["status"] == "ok"
    assert second.status_code == 200
    assert second.json() == {"status": "duplicate", "event_id": "same", "customer_id": None}
    assert Event.objects.filter(event_id="same").count() == 1
    assert Event.objects.get().properties == {}  # the first one is kept as it was


def test_known_identity_attaches_customer_directly_and_touches_last_seen(api):
    c = _customer(email="li@example.com")
    resp = api.post(
        "/api/v1/track",
        {"event_id": "e-2", "type": "track", "name": "Coupon used", "email": " LI@Example.com ",
         "occurred_at": "2025-03-01T10:00:30Z"},
    )  # fmt: skip
    assert resp.json() == {"status": "ok", "event_id": "e-2", "customer_id": c.pk}
    assert Event.objects.get().customer_id == c.pk
    c.refresh_from_db()
    assert c.last_seen_at == dt.datetime(2025, 3, 1, 10, 0, tzinfo=dt.UTC)  # to the minute


def test_user_id_wins_over_anonymous_id(api):
    c = _customer(external="shop-42")
    other = Customer.objects.create(display_name="Other")
    Identity.objects.create(customer=other, kind="anonymous", value="anon-x")
    resp = api.post(
        "/api/v1/track", {"event_id": "e-3", "type": "page", "user_id": "shop-42", "anonymous_id": "anon-x"}
    )
    assert resp.json()["customer_id"] == c.pk


def test_unknown_anonymous_id_keeps_customer_null(api):
    api.post("/api/v1/track", {"event_id": "e-4", "type": "page", "anonymous_id": "never-seen"})
    event = Event.objects.get()
    assert event.customer_id is None
    assert event.anonymous_id == "never-seen"
    assert Customer.objects.count() == 0
    assert Identity.objects.count() == 0


def test_unknown_email_creates_the_customer(api):
    resp = api.post("/api/v1/track", {"event_id": "e-5", "type": "checkout", "email": "new@example.com"})
    customer = Customer.objects.get()
    assert resp.json()["customer_id"] == customer.pk
    assert list(customer.identities.values_list("kind", "value")) == [("email", "new@example.com")]
    assert customer.email == "new@example.com"


def test_merged_customer_identity_resolves_to_survivor(api):
    survivor = Customer.objects.create(display_name="Survivor")
    merged = _customer(email="old@example.com", external=None)
    merged.status = "merged"
    merged.merged_into = survivor
    merged.save()
    resp = api.post("/api/v1/track", {"event_id": "e-6", "type": "page", "email": "old@example.com"})
    assert resp.json()["customer_id"] == survivor.pk


def test_default_occurred_at_is_now(api):
    before = dt.datetime.now(dt.UTC)
    api.post("/api/v1/track", {"event_id": "e-7", "type": "page", "anonymous_id": "a"})
    event = Event.objects.get()
    assert before <= event.occurred_at <= dt.datetime.now(dt.UTC)
    assert event.occurred_at == event.received_at


def test_segment_style_aliases_are_accepted(api):
    resp = api.post(
        "/api/v1/track",
        {"messageId": "m-1", "type": "track", "name": "Signed up", "anonymousId": "a-9",
         "timestamp": "2025-01-02T03:04:05Z"},
    )  # fmt: skip
    assert resp.status_code == 200, resp.content
    event = Event.objects.get()
    assert (event.event_id, event.anonymous_id, event.name) == ("m-1", "a-9", "Signed up")


def test_console_user_with_edit_rights_may_track(login):
    client = login("manager")
    resp = client.post(
        "/api/v1/track",
        {"event_id": "c-1", "type": "page", "anonymous_id": "a"},
        content_type="application/json",
    )
    assert resp.status_code == 200, resp.content
    assert Event.objects.count() == 1
