"""POST /api/v1/batch: good items are stored, bad ones reported by index and field path."""

from __future__ import annotations

import threading

import orjson
import pytest
from django.db import connection

from ecrm.core.models import AuditLog
from ecrm.customers.models import Customer, Identity
from ecrm.ingest.models import Event

pytestmark = pytest.mark.django_db


def ev(i, **kw):
    return {"event_id": f"e-{i}", "type": "page", "anonymous_id": f"a-{i % 3}", **kw}


def test_batch_keeps_good_items_and_reports_bad_ones_exactly(api):
    items = [
        ev(0),
        ev(1, occurred_at="2025-03-01T10:00:00"),  # naive time
        ev(2, type="teleport"),
        {"type": "track", "event_id": "e-3", "anonymous_id": "a"},  # track without a name
        ev(4, email="not-an-email"),
        "not an object",
        ev(6, properties={"sku": "X"}),
        {"type": "page", "anonymous_id": "a"},  # no event_id
        ev(8, colour="red"),  # unknown field
    ]
    resp = api.post("/api/v1/batch", {"batch": items})
    assert resp.status_code == 200, resp.content
    body = resp.json()
    assert (body["received"], body["accepted"], body["duplicates"], body["failed"]) == (9, 2, 0, 7)
    results = body["results"]
    assert [r["index"] for r in results] == list(range(9))
    assert [r["status"] for r in results] == [
        "ok",
        "error",
        "error",
        "error",
        "error",
        "error",
        "ok",
        "error",
        "error",
    ]
    assert results[1]["errors"] == {"occurred_at": "Input should have timezone info"}
    assert list(results[2]["errors"]) == ["type"]
    assert results[2]["errors"]["type"].startswith("Input should be 'page', 'track'")
    assert results[3]["errors"] == {"name": "is required for a `track` event"}
    assert results[4]["errors"] == {"email": "'not-an-email' is not a valid email address"}
    assert results[5]["errors"] == {"body": "each item must be a JSON object"}
    assert results[7]["errors"] == {"event_id": "Field required"}
    assert results[8]["errors"] == {"colour": "Extra inputs are not permitted"}
    assert results[0] == {"index": 0, "status": "ok", "type": "page", "event_id": "e-0"}
    assert sorted(Event.objects.values_list("event_id", flat=True)) == ["e-0", "e-6"]
    assert Event.objects.get(event_id="e-6").properties == {"sku": "X"}


def test_repeated_ids_within_and_across_batches_are_stored_once(api):
    first = api.post("/api/v1/batch", {"batch": [ev(1), ev(2), ev(1)]}).json()
    assert [r["status"] for r in first["results"]] == ["ok", "ok", "duplicate"]
    second = api.post("/api/v1/batch", {"batch": [ev(2), ev(3)]}).json()
    assert [r["status"] for r in second["results"]] == ["duplicate", "ok"]
    assert (second["accepted"], second["duplicates"]) == (1, 1)
    assert Event.objects.count() == 3


def test_identity_resolution_for_the_whole_batch_in_few_queries(api, django_assert_max_num_queries):
    known = []
    for i in range(20):
        c = Customer.objects.create(display_name=f"C{i}")
        Identity.objects.create(customer=c, kind="email", value=f"c{i}@example.com")
        known.append(c)
    anon_owner = Customer.objects.create(display_name="Anon owner")
    Identity.objects.create(customer=anon_owner, kind="anonymous", value="linked-anon")
    items = [ev(i, email=f"C{i % 20}@example.com") for i in range(500)]
    items += [ev(1000 + i, anonymous_id="linked-anon") for i in range(200)]
    items += [ev(2000 + i, anonymous_id=f"stranger-{i}") for i in range(300)]
    # key lookup + last-used, identities, savepoint/insert, last_seen updates: independent of batch size
    with django_assert_max_num_queries(12):
        resp = api.post("/api/v1/batch", {"batch": items})
    body = resp.json()
    assert body["accepted"] == 1000
    assert Event.objects.filter(customer__isnull=True).count() == 300
    assert Event.objects.filter(customer=anon_owner).count() == 200
    for c in known:
        assert Event.objects.filter(customer=c).count() == 25
    assert Customer.objects.filter(last_seen_at__isnull=False).count() == 21


def test_identify_in_a_batch_claims_the_visitors_events_whatever_the_order(api):
    items = [
        ev(1, anonymous_id="visitor"),
        {
            "type": "identify",
            "anonymous_id": "visitor",
            "email": "wang@example.com",
            "traits": {"first_name": "Fang"},
        },
        ev(2, anonymous_id="visitor"),
        {"type": "identify", "anonymous_id": "v2"},  # no identity
    ]
    body = api.post("/api/v1/batch", {"batch": items}).json()
    assert [r["status"] for r in body["results"]] == ["ok", "ok", "ok", "error"]
    assert body["results"][3]["errors"] == {"user_id": "identify needs user_id, email or phone"}
    customer = Customer.objects.get()
    assert customer.first_name == "Fang"
    assert body["results"][1]["customer_id"] == customer.pk
    assert set(Event.objects.values_list("event_id", "customer_id")) == {
        ("e-1", customer.pk),
        ("e-2", customer.pk),
    }


def test_oversized_item_is_a_per_item_error(api, settings):
    settings.ECRM_MAX_EVENT_BYTES = 500
    items = [ev(1, properties={"blob": "x" * 600}), ev(2)]
    body = api.post("/api/v1/batch", {"batch": items}).json()
    assert body["results"][0]["status"] == "error"
    assert body["results"][0]["errors"]["body"].endswith("the limit is 500 bytes")
    assert body["results"][1]["status"] == "ok"
    assert list(Event.objects.values_list("event_id", flat=True)) == ["e-2"]


def test_batch_does_not_write_audit_rows_for_events(api):
    before = AuditLog.objects.count()
    api.post("/api/v1/batch", {"batch": [ev(i) for i in range(50)]})
    assert AuditLog.objects.count() == before
    assert Event.objects.count() == 50


def test_empty_batch_is_accepted_with_zero_counts(api):
    assert api.post("/api/v1/batch", {"batch": []}).json() == {
        "received": 0, "accepted": 0, "duplicates": 0, "failed": 0, "results": [],
    }  # fmt: skip


def test_id_stored_by_another_request_mid_flight_is_reported_duplicate(api, monkeypatch):
    """The race window between validation and insert: another request stores e-1 first. The insert
    itself (ON CONFLICT DO NOTHING RETURNING) decides, so e-1 is 'duplicate' and stored once."""
    from ecrm.ingest import services

    real = services._resolve_owners

    def racing(pairs, *args):
        Event.objects.create(
            event_id="e-1", type="page", anonymous_id="other", occurred_at="2025-01-01T00:00Z"
        )
        return real(pairs, *args)

    monkeypatch.setattr(services, "_resolve_owners", racing)
    body = api.post("/api/v1/batch", {"batch": [ev(0), ev(1)]}).json()
    assert [r["status"] for r in body["results"]] == ["ok", "duplicate"]
    assert Event.objects.filter(event_id="e-1").get().anonymous_id == "other"
    assert Event.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_senders_of_the_same_ids_store_each_once(api_keys):
    if connection.vendor != "postgresql":
        pytest.skip("in-memory SQLite cannot run concurrent writers; covered by the mid-flight test")
    from conftest import ApiClient

    payload = orjson.dumps({"batch": [ev(i) for i in range(200)]})
    statuses: list[list[str]] = []
    errors: list[BaseException] = []

    def send():
        try:
            client = ApiClient(api_keys["write"])
            resp = client.post("/api/v1/batch", raw=payload)
            statuses.append([r["status"] for r in resp.json()["results"]])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert Event.objects.count() == 200
    # Exactly one sender was told "ok" for each id; the others "duplicate".
    for i in range(200):
        assert sum(1 for s in statuses if s[i] == "ok") == 1
