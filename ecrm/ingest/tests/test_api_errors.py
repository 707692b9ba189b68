"""Error answers of the tracking API: 400, 401, 403, 413, 422, each with nothing stored."""

from __future__ import annotations

import orjson
import pytest

from conftest import ApiClient
from ecrm.core.services import do_revoke_api_key
from ecrm.ingest.models import Event

pytestmark = pytest.mark.django_db

EVENT = {"event_id": "e-1", "type": "page", "anonymous_id": "a"}


@pytest.mark.parametrize("path", ["/api/v1/track", "/api/v1/batch", "/api/v1/identify"])
def test_malformed_json_is_400(api, path):
    resp = api.post(path, raw=b'{"event_id": "e-1", ')
    assert resp.status_code == 400
    assert resp.json()["code"] == "malformed_json"
    assert resp.json()["message"].startswith("Malformed JSON: ")
    assert Event.objects.count() == 0


def test_missing_key_is_401(api_anon):
    resp = api_anon.post("/api/v1/track", EVENT)
    assert resp.status_code == 401
    assert resp.json() == {"code": "unauthorized", "message": "A valid, unrevoked API key is required."}
    assert Event.objects.count() == 0


def test_unknown_and_revoked_keys_are_401(api_keys, cast):
    assert ApiClient("ecrm_not-a-real-key").post("/api/v1/batch", {"batch": [EVENT]}).status_code == 401
    from ecrm.core.models import ApiKey

    key = ApiKey.objects.get(name="test-write")
    do_revoke_api_key(key_id=key.pk, actor=cast["admin"])
    resp = ApiClient(api_keys["write"]).post("/api/v1/batch", {"batch": [EVENT]})
    assert resp.status_code == 401
    assert Event.objects.count() == 0


@pytest.mark.parametrize("path", ["/api/v1/track", "/api/v1/batch", "/api/v1/identify"])
def test_read_only_key_is_403_and_nothing_changes(api_read, path):
    body = {"batch": [EVENT]} if path.endswith("batch") else EVENT
    if path.endswith("identify"):
        body = {"anonymous_id": "a", "email": "x@example.com"}
    resp = api_read.post(path, body)
    assert resp.status_code == 403
    assert resp.json() == {"code": "read_only_key", "message": "This API key is read-only."}
    assert Event.objects.count() == 0
    from ecrm.customers.models import Customer

    assert Customer.objects.count() == 0


def test_console_user_without_edit_rights_is_403(login):
    client = login("analyst")
    resp = client.post("/api/v1/track", EVENT, content_type="application/json")
    assert resp.status_code == 403
    assert Event.objects.count() == 0


def test_tracking_key_may_send_events_but_not_orders(api_keys):
    browser = ApiClient(api_keys["track"])
    assert browser.post("/api/v1/track", EVENT).status_code == 200
    resp = browser.put(
        "/api/v1/orders/SO-1",
        {"placed_at": "2025-01-01T00:00:00Z", "total": "10.00", "currency": "CNY"},
    )
    assert resp.status_code == 403
    assert browser.put("/api/v1/products/SKU-1", {"name": "Knife"}).status_code == 403
    assert browser.get("/api/v1/orders/SO-1").status_code == 403
    from ecrm.commerce.models import Order, Product

    assert (Order.objects.count(), Product.objects.count()) == (0, 0)


def test_body_over_batch_limit_is_413_before_parsing(api, settings):
    settings.ECRM_MAX_BATCH_BYTES = 1000
    # Not even valid JSON: the size is judged before the parser runs.
    resp = api.post("/api/v1/batch", raw=b"[" * 1001)
    assert resp.status_code == 413
    assert resp.json() == {
        "code": "payload_too_large",
        "message": "The request body is 1,001 bytes; the limit is 1,000 bytes.",
    }
    assert Event.objects.count() == 0


def test_single_event_over_event_limit_is_413(api, settings):
    settings.ECRM_MAX_EVENT_BYTES = 200
    resp = api.post("/api/v1/track", {**EVENT, "properties": {"x": "y" * 300}})
    assert resp.status_code == 413
    assert resp.json()["code"] == "payload_too_large"
    assert Event.objects.count() == 0


def test_more_than_1000_items_is_413(api):
    items = [{**EVENT, "event_id": f"e-{i}"} for i in range(1001)]
    resp = api.post("/api/v1/batch", {"batch": items})
    assert resp.status_code == 413
    assert resp.json() == {
        "code": "too_many_items",
        "message": "A batch holds at most 1,000 items; this one has 1,001.",
    }
    assert Event.objects.count() == 0


def test_schema_errors_are_422_with_field_paths(api):
    resp = api.post(
        "/api/v1/track",
        {"event_id": "", "type": "page", "anonymous_id": "a", "occurred_at": "yesterday", "properties": []},
    )
    assert resp.status_code == 422
    body = resp.json()
    assert body["code"] == "validation_failed"
    assert set(body["fields"]) == {"event_id", "occurred_at", "properties"}
    assert body["fields"]["event_id"] == "String should have at least 1 character"
    assert body["fields"]["properties"] == "Input should be a valid dictionary"
    assert Event.objects.count() == 0


def test_future_time_is_refused(api):
    resp = api.post("/api/v1/track", {**EVENT, "occurred_at": "2999-01-01T00:00:00Z"})
    assert resp.status_code == 422
    assert resp.json()["fields"] == {"occurred_at": "is more than a day in the future"}


def test_batch_envelope_errors_are_422(api):
    resp = api.post("/api/v1/batch", [EVENT])
    assert resp.status_code == 422
    assert resp.json()["fields"] == {"body": "must be an object"}
    resp = api.post("/api/v1/batch", {"batch": EVENT})
    assert resp.json()["fields"] == {"batch": "must be a list"}
    resp = api.post("/api/v1/batch", {"batch": [], "events": []})
    assert resp.json()["fields"] == {"events": "Extra inputs are not permitted"}


def test_identify_is_not_accepted_as_a_track_event(api):
    resp = api.post("/api/v1/track", {"type": "identify", "anonymous_id": "a", "email": "x@example.com"})
    assert resp.status_code == 422
    assert resp.json()["fields"] == {"type": "identify is not an event type"}


def test_openapi_documents_the_endpoints(client):
    schema = orjson.loads(client.get("/api/openapi.json").content)
    batch = schema["paths"]["/api/v1/batch"]["post"]
    items = batch["requestBody"]["content"]["application/json"]["schema"]["properties"]["batch"]
    assert items["maxItems"] == 1000
    assert set(batch["responses"]) >= {"200", "400", "401", "403", "413", "422"}
    assert "text/plain" in schema["paths"]["/api/v1/t"]["post"]["requestBody"]["content"]
