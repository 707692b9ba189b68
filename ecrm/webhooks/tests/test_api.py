"""The webhooks REST API: endpoint CRUD with field-level 422s, the delivery log, replay, the allow-list,
and who may do what."""

from __future__ import annotations

import pytest

from conftest import ApiClient
from ecrm.core.models import AuditLog
from ecrm.core.services import do_create_api_key
from ecrm.webhooks.models import AllowedDestination, Delivery, Endpoint

BASE = "/api/v1/webhooks"


@pytest.fixture
def admin_api(cast):
    _, raw = do_create_api_key(name="wh-admin", scope="write", actor=cast["admin"])
    return ApiClient(raw)


@pytest.fixture
def admin_read_api(cast):
    _, raw = do_create_api_key(name="wh-admin-read", scope="read", actor=cast["admin"])
    return ApiClient(raw)


def test_create_list_update_and_delete_an_endpoint(admin_api, receiver):
    r = admin_api.post(
        f"{BASE}/endpoints",
        {"name": "ERP", "url": f"{receiver.url}/erp", "events": ["order.", "ticket.created"]},
    )
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["secret"].startswith("whsec_") and body["events"] == ["order.", "ticket.created"]
    assert body["created_by"] == "admin" and body["is_active"] is True
    listed = admin_api.get(f"{BASE}/endpoints").json()
    assert [e["name"] for e in listed] == ["ERP"] and "secret" not in listed[0]
    r = admin_api.patch(f"{BASE}/endpoints/{body['id']}", {"events": ["*"], "is_active": False})
    assert r.status_code == 200 and r.json()["events"] == ["*"] and r.json()["is_active"] is False
    assert AuditLog.objects.filter(action="webhooks.endpoint.update", object_id=str(body["id"])).count() == 1
    assert admin_api.delete(f"{BASE}/endpoints/{body['id']}").status_code == 204
    assert Endpoint.objects.count() == 0


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        ({"url": "http://169.254.169.254/latest/meta-data/"}, "url", "refused"),
        ({"url": "http://2130706433/"}, "url", "refused"),
        ({"url": "http://[::ffff:10.0.0.1]/hook"}, "url", "refused"),
        ({"url": "ftp://erp.example/"}, "url", "http"),
        ({"url": ""}, "url", "URL"),
        ({"events": ["ticket.exploded"]}, "events", "ticket.exploded"),
        ({"events": ["tick"]}, "events", "tick"),
        ({"events": []}, "events", "at least one"),
        ({"events": ["schedule.tick"]}, "events", "schedule.tick"),
        ({"name": "  "}, "name", "name"),
    ],
)
def test_bad_input_is_a_field_error(admin_api, receiver, payload, field, words):
    data = {"name": "ERP", "url": f"{receiver.url}/erp", "events": ["order."], **payload}
    r = admin_api.post(f"{BASE}/endpoints", data)
    assert r.status_code == 422, r.content
    assert r.json()["code"] == "validation_failed" and words in r.json()["fields"][field]
    assert Endpoint.objects.count() == 0


def test_deliveries_are_listed_filtered_shown_and_replayed(
    admin_api, endpoint, receiver, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    from ecrm.webhooks.services import send_to_endpoint

    erp, wms = endpoint(name="ERP"), endpoint(name="WMS", path="/wms")
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(3):
            send_to_endpoint(erp.pk, "order.sync", {"n": n})
        send_to_endpoint(wms.pk, "ticket.created", {"n": 9})
    with django_assert_max_num_queries(6):
        page = admin_api.get(f"{BASE}/deliveries", limit=2).json()
    assert page["count"] == 4 and len(page["items"]) == 2
    only = admin_api.get(f"{BASE}/deliveries", endpoint=wms.pk).json()
    assert [(d["endpoint"], d["event_name"], d["status"]) for d in only["items"]] == [
        ("WMS", "ticket.created", "succeeded")
    ]
    assert admin_api.get(f"{BASE}/deliveries", event="order.").json()["count"] == 3
    assert admin_api.get(f"{BASE}/deliveries", status="failed").json()["count"] == 0
    d = Delivery.objects.get(endpoint=wms)
    detail = admin_api.get(f"{BASE}/deliveries/{d.pk}").json()
    assert detail["payload"] == {"n": 9} and detail["delivery_id"] == d.uid.hex
    assert [(a["number"], a["status_code"]) for a in detail["attempt_log"]] == [(1, 200)]
    assert detail["attempt_log"][0]["request_headers"]["X-Ecrm-Delivery"] == d.uid.hex
    with django_capture_on_commit_callbacks(execute=True):
        r = admin_api.post(f"{BASE}/deliveries/{d.pk}/replay")
    assert r.status_code == 202
    assert [req.path for req in receiver.requests].count("/wms") == 2
    d.refresh_from_db()
    assert d.attempts == 2


def test_test_send_rotate_and_enable(admin_api, endpoint, receiver):
    ep = endpoint()
    r = admin_api.post(f"{BASE}/endpoints/{ep.pk}/test")
    assert (
        r.status_code == 200
        and r.json()["status"] == "succeeded"
        and r.json()["event_name"] == "webhook.test"
    )
    secret = admin_api.post(f"{BASE}/endpoints/{ep.pk}/rotate-secret").json()["secret"]
    ep.refresh_from_db()
    assert ep.secret == secret
    Endpoint.objects.filter(pk=ep.pk).update(is_active=False, consecutive_failures=5, disabled_reason="x")
    r = admin_api.post(f"{BASE}/endpoints/{ep.pk}/enable")
    assert r.json()["is_active"] is True and r.json()["consecutive_failures"] == 0


def test_the_allow_list_is_managed_and_audited(admin_api, receiver, settings):
    settings.ECRM_OUTBOUND_ALLOWLIST = []
    refused = admin_api.post(
        f"{BASE}/endpoints", {"name": "ERP", "url": f"{receiver.url}/erp", "events": ["*"]}
    )
    assert refused.status_code == 422
    r = admin_api.post(f"{BASE}/allowlist", {"value": f"127.0.0.1:{receiver.port}", "note": "test receiver"})
    assert r.status_code == 201 and r.json()["value"] == f"127.0.0.1:{receiver.port}"
    assert admin_api.post(f"{BASE}/allowlist", {"value": "10.0.0.0/33"}).json()["fields"]["value"]
    ok = admin_api.post(f"{BASE}/endpoints", {"name": "ERP", "url": f"{receiver.url}/erp", "events": ["*"]})
    assert ok.status_code == 201, ok.content
    entry = AllowedDestination.objects.get()
    assert AuditLog.objects.filter(action="webhooks.allowlist.add", object_id=str(entry.pk)).count() == 1
    assert admin_api.delete(f"{BASE}/allowlist/{entry.pk}").status_code == 204
    again = admin_api.post(
        f"{BASE}/endpoints", {"name": "ERP2", "url": f"{receiver.url}/erp", "events": ["*"]}
    )
    assert again.status_code == 422


def test_who_may_do_what(cast, admin_read_api, api, receiver, client):
    data = {"name": "ERP", "url": f"{receiver.url}/erp", "events": ["*"]}
    assert admin_read_api.get(f"{BASE}/endpoints").status_code == 200
    assert admin_read_api.post(f"{BASE}/endpoints", data).status_code == 403
    assert api.post(f"{BASE}/endpoints", data).status_code == 403  # a key without an owner
    client.force_login(cast["manager"])
    assert client.get(f"{BASE}/endpoints").status_code == 403
    r = client.post(f"{BASE}/endpoints", data, content_type="application/json")
    assert r.status_code == 403
    assert Endpoint.objects.count() == 0
    client.force_login(cast["admin"])
    assert client.get(f"{BASE}/events").json()[0]["name"] == "customer.created"
