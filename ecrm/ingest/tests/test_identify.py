"""POST /api/v1/identify: link an anonymous visitor to a customer and move their past events."""

from __future__ import annotations

import pytest

from ecrm.core.models import AuditLog
from ecrm.customers.models import Customer, Identity
from ecrm.ingest.models import Event

pytestmark = pytest.mark.django_db


def _anon_events(api, anon, n, start=0):
    items = [
        {"event_id": f"{anon}-{i}", "type": "page", "anonymous_id": anon} for i in range(start, start + n)
    ]
    assert api.post("/api/v1/batch", {"batch": items}).json()["accepted"] == n


def test_identify_creates_customer_links_anonymous_id_and_moves_past_events(api):
    _anon_events(api, "visitor-1", 3)
    _anon_events(api, "someone-else", 2)
    resp = api.post(
        "/api/v1/identify",
        {
            "anonymous_id": "visitor-1",
            "user_id": "shop-7",
            "traits": {"email": "Mei@Example.com", "first_name": "Mei"},
        },
    )
    assert resp.status_code == 200, resp.content
    body = resp.json()
    customer = Customer.objects.get()
    assert body == {
        "customer_id": customer.pk,
        "created": True,
        "events_moved": 3,
        "attached": ["external:shop-7", "anonymous:visitor-1", "email:mei@example.com"],
    }
    assert customer.email == "mei@example.com"
    assert customer.first_name == "Mei"
    assert set(customer.identities.values_list("kind", "value")) == {
        ("external", "shop-7"), ("anonymous", "visitor-1"), ("email", "mei@example.com"),
    }  # fmt: skip
    assert Event.objects.filter(customer=customer).count() == 3
    assert Event.objects.filter(anonymous_id="someone-else", customer__isnull=True).count() == 2
    audit = AuditLog.objects.get(action="customer.identify")
    assert audit.after == {"anonymous_id": "visitor-1", "linked": True, "events_moved": 3}
    assert audit.actor_label == "api-key:test-write"
    assert AuditLog.objects.filter(action="customer.create", object_id=str(customer.pk)).count() == 1

    # Later events of that visitor resolve straight to the customer.
    resp = api.post("/api/v1/track", {"event_id": "later", "type": "page", "anonymous_id": "visitor-1"})
    assert resp.json()["customer_id"] == customer.pk


def test_identify_with_known_email_attaches_to_existing_customer(api):
    existing = Customer.objects.create(display_name="Zhang San", email="zs@example.com")
    Identity.objects.create(customer=existing, kind="email", value="zs@example.com")
    _anon_events(api, "v-2", 2)
    body = api.post("/api/v1/identify", {"anonymous_id": "v-2", "email": "zs@example.com"}).json()
    assert body["customer_id"] == existing.pk
    assert body["created"] is False
    assert body["events_moved"] == 2
    assert Customer.objects.count() == 1


def test_repeated_identify_is_idempotent(api):
    _anon_events(api, "v-3", 1)
    first = api.post("/api/v1/identify", {"anonymous_id": "v-3", "email": "a@example.com"}).json()
    second = api.post("/api/v1/identify", {"anonymous_id": "v-3", "email": "a@example.com"}).json()
    assert second == {
        "customer_id": first["customer_id"],
        "created": False,
        "events_moved": 0,
        "attached": [],
    }
    assert Identity.objects.count() == 2
    assert AuditLog.objects.filter(action="customer.identify").count() == 1


def test_identify_errors_name_the_field(api):
    resp = api.post("/api/v1/identify", {"anonymous_id": "v", "phone": "12"})
    assert resp.status_code == 422
    assert resp.json()["fields"] == {"phone": "'12' is not a valid phone number"}
    resp = api.post("/api/v1/identify", {"anonymous_id": "v"})
    assert resp.status_code == 422
    assert resp.json()["fields"] == {"user_id": "identify needs user_id, email or phone"}
    resp = api.post("/api/v1/identify", {"email": "x@example.com", "traits": {"shoe_size": 42}})
    assert resp.status_code == 422
    assert resp.json()["fields"] == {"traits.shoe_size": "unknown field"}
    assert Customer.objects.count() == 0
    assert Identity.objects.count() == 0


def test_tracking_key_identify_fills_blanks_but_never_overwrites(api_keys):
    from conftest import ApiClient

    existing = Customer.objects.create(first_name="Real", display_name="Real", email="r@example.com")
    Identity.objects.create(customer=existing, kind="email", value="r@example.com")
    browser = ApiClient(api_keys["track"])
    resp = browser.post(
        "/api/v1/identify",
        {
            "anonymous_id": "b1",
            "email": "r@example.com",
            "traits": {"first_name": "Fake", "city": "Hangzhou"},
        },
    )
    assert resp.status_code == 200, resp.content
    existing.refresh_from_db()
    assert (existing.first_name, existing.city) == ("Real", "Hangzhou")
