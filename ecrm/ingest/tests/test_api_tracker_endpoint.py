"""POST /api/v1/t, the browser tracker's endpoint: text/plain bodies, key in body or query, CORS."""

from __future__ import annotations

import orjson
import pytest
from django.test import Client

from ecrm.customers.models import Customer
from ecrm.ingest.models import Event

pytestmark = pytest.mark.django_db


def _post(body, *, query="", content_type="text/plain;charset=UTF-8"):
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return Client().post(
        f"/api/v1/t{query}", data=raw, content_type=content_type, HTTP_ORIGIN="https://shop.example"
    )


def _page(i=1, **kw):
    return {"event_id": f"t-{i}", "type": "page", "anonymous_id": "aid-1", **kw}


def test_text_plain_batch_with_key_in_body(api_keys):
    resp = _post({"key": api_keys["track"], "batch": [_page(1), _page(2)]})
    assert resp.status_code == 200, resp.content
    assert resp["Access-Control-Allow-Origin"] == "*"
    body = resp.json()
    assert (body["accepted"], body["failed"]) == (2, 0)
    assert list(Event.objects.order_by("event_id").values_list("event_id", "source")) == [
        ("t-1", "tracker"), ("t-2", "tracker"),
    ]  # fmt: skip


def test_key_in_query_string(api_keys):
    resp = _post({"batch": [_page()]}, query=f"?key={api_keys['track']}")
    assert resp.status_code == 200
    assert Event.objects.count() == 1


def test_preflight_is_answered():
    resp = Client().options(
        "/api/v1/t", HTTP_ORIGIN="https://shop.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
    )
    assert resp.status_code == 204
    assert resp["Access-Control-Allow-Origin"] == "*"
    assert resp["Access-Control-Allow-Methods"] == "POST, OPTIONS"
    assert resp["Access-Control-Allow-Headers"] == "Content-Type"


def test_errors_carry_cors_headers_so_the_page_can_read_them(api_keys):
    missing = _post({"batch": [_page()]})
    assert missing.status_code == 401
    assert missing["Access-Control-Allow-Origin"] == "*"
    assert missing.json()["code"] == "unauthorized"
    bad_json = _post(b"{nope", query=f"?key={api_keys['track']}")
    assert bad_json.status_code == 400
    assert bad_json["Access-Control-Allow-Origin"] == "*"
    read_only = _post({"key": api_keys["read"], "batch": [_page()]})
    assert read_only.status_code == 403
    assert read_only["Access-Control-Allow-Origin"] == "*"
    assert Event.objects.count() == 0


def test_too_large_is_413(api_keys, settings):
    settings.ECRM_MAX_BATCH_BYTES = 100
    resp = _post({"key": api_keys["track"], "batch": [_page(properties={"x": "y" * 200})]})
    assert resp.status_code == 413
    assert resp["Access-Control-Allow-Origin"] == "*"
    assert Event.objects.count() == 0


def test_identify_from_the_browser_moves_events(api_keys):
    _post({"key": api_keys["track"], "batch": [_page(1), _page(2)]})
    resp = _post(
        {
            "key": api_keys["track"],
            "batch": [{"type": "identify", "anonymous_id": "aid-1", "email": "b@example.com"}],
        }
    )
    assert resp.json()["accepted"] == 1
    customer = Customer.objects.get()
    assert Event.objects.filter(customer=customer).count() == 2


def test_no_csrf_or_session_needed():
    # The endpoint has no cookie-based auth, so a cross-site POST without a CSRF token is fine
    # (and cannot act as a signed-in console user).
    client = Client(enforce_csrf_checks=True)
    resp = client.post("/api/v1/t", data=b'{"batch": []}', content_type="text/plain")
    assert resp.status_code == 401
