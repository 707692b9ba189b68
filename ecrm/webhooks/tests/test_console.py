"""Settings -> Webhooks pages: admins create endpoints with the event picker (secret shown once), see the
log with filters and detail, replay, re-enable, rotate, and edit the allow-list; others are refused."""

from __future__ import annotations

import re

import pytest

from ecrm.core.models import AuditLog
from ecrm.webhooks import services
from ecrm.webhooks.models import AllowedDestination, Delivery, Endpoint


def test_an_admin_creates_an_endpoint_and_sees_the_secret_once(login, receiver):
    client = login("admin")
    page = client.get("/webhooks/new/")
    assert (
        page.status_code == 200
        and b'value="ticket.created"' in page.content
        and b'value="ticket."' in page.content
    )
    r = client.post(
        "/webhooks/new/",
        {
            "name": "ERP",
            "url": f"{receiver.url}/erp",
            "events": ["order.", "ticket.created"],
            "is_active": "1",
        },
    )
    ep = Endpoint.objects.get()
    assert (ep.name, ep.events, ep.is_active) == ("ERP", ["order.", "ticket.created"], True)
    assert r.status_code == 200 and ep.secret.encode() in r.content
    again = client.get(f"/webhooks/{ep.pk}/")
    assert ep.secret.encode() not in again.content
    listing = client.get("/webhooks/")
    assert f'data-endpoint="{ep.pk}"'.encode() in listing.content
    assert b'href="/webhooks/"' in client.get("/").content  # the Settings nav link


def test_a_refused_destination_is_shown_on_its_field(login):
    client = login("admin")
    r = client.post(
        "/webhooks/new/", {"name": "Meta", "url": "http://169.254.169.254/latest", "events": ["*"]}
    )
    assert r.status_code == 422
    assert re.search(rb'data-error="url">[^<]*169\.254\.169\.254', r.content)
    assert Endpoint.objects.count() == 0


def test_log_filters_detail_and_replay(login, endpoint, receiver, django_capture_on_commit_callbacks):
    client = login("admin")
    erp, wms = endpoint(name="ERP"), endpoint(name="WMS", path="/wms")
    with django_capture_on_commit_callbacks(execute=True):
        services.send_to_endpoint(erp.pk, "order.sync", {"n": 1})
        services.send_to_endpoint(wms.pk, "ticket.created", {"n": 2})
    page = client.get("/webhooks/deliveries/", {"endpoint": wms.pk})
    rows = re.findall(rb'data-delivery="(\d+)"', page.content)
    d = Delivery.objects.get(endpoint=wms)
    assert rows == [str(d.pk).encode()]
    partial = client.get("/webhooks/deliveries/", {"event": "order."}, HTTP_HX_REQUEST="true")
    assert b"<html" not in partial.content and len(re.findall(rb'data-delivery="', partial.content)) == 1
    detail = client.get(f"/webhooks/deliveries/{d.pk}/")
    assert d.uid.hex.encode() in detail.content and b'data-attempt="1"' in detail.content
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/webhooks/deliveries/{d.pk}/replay/")
    d.refresh_from_db()
    assert d.attempts == 2 and [r.path for r in receiver.requests].count("/wms") == 2


def test_re_enable_rotate_and_test_buttons(login, endpoint, receiver):
    client = login("admin")
    ep = endpoint()
    Endpoint.objects.filter(pk=ep.pk).update(
        is_active=False, consecutive_failures=5, disabled_reason="5 in a row"
    )
    assert b'id="disabled-notice"' in client.get(f"/webhooks/{ep.pk}/").content
    client.post(f"/webhooks/{ep.pk}/enable/")
    ep.refresh_from_db()
    assert (ep.is_active, ep.consecutive_failures) == (True, 0)
    old = ep.secret
    r = client.post(f"/webhooks/{ep.pk}/rotate/")
    ep.refresh_from_db()
    assert ep.secret != old and ep.secret.encode() in r.content
    r = client.post(f"/webhooks/{ep.pk}/test/")
    d = Delivery.objects.get(event_name="webhook.test")
    assert (
        r.status_code == 302 and r["Location"] == f"/webhooks/deliveries/{d.pk}/" and d.status == "succeeded"
    )
    assert client.post(f"/webhooks/{ep.pk}/explode/").status_code == 404


def test_the_allow_list_editor(login, receiver, settings):
    settings.ECRM_OUTBOUND_ALLOWLIST = []
    client = login("admin")
    client.post("/webhooks/allowlist/add/", {"value": f"127.0.0.1:{receiver.port}", "note": "test receiver"})
    entry = AllowedDestination.objects.get()
    assert entry.value == f"127.0.0.1:{receiver.port}" and entry.created_by.username == "admin"
    assert AuditLog.objects.filter(action="webhooks.allowlist.add").count() == 1
    page = client.get("/webhooks/")
    assert f'data-allowed="{entry.value}"'.encode() in page.content
    client.post("/webhooks/allowlist/add/", {"value": "not a host"})
    assert AllowedDestination.objects.count() == 1
    client.post(f"/webhooks/allowlist/{entry.pk}/remove/")
    assert AllowedDestination.objects.count() == 0
    assert AuditLog.objects.filter(action="webhooks.allowlist.remove").count() == 1


@pytest.mark.parametrize("who", ["manager", "agent_li", "nobody"])
def test_others_are_refused_and_nothing_changes(login, who, endpoint):
    ep = endpoint()
    client = login(who)
    assert client.get("/webhooks/").status_code == 403
    assert client.get("/webhooks/deliveries/").status_code == 403
    assert client.post(f"/webhooks/{ep.pk}/delete/").status_code == 403
    assert client.post("/webhooks/allowlist/add/", {"value": "10.0.0.1"}).status_code == 403
    assert Endpoint.objects.count() == 1 and AllowedDestination.objects.count() == 0
    assert b'href="/webhooks/"' not in client.get("/").content
