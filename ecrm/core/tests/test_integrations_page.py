from django.urls import reverse

from ecrm.core.models import ApiKey, AuditLog


def test_admin_creates_key_sees_it_once_and_revokes_it(login):
    client = login("admin")
    resp = client.post(reverse("core:integrations"), {"name": "Shopify", "scope": "write"}, follow=True)
    body = resp.content.decode()
    key = ApiKey.objects.get(name="Shopify")
    assert key.scope == "write"
    assert 'id="new-key-value"' in body
    raw = body.split('id="new-key-value">')[1].split("<")[0]
    assert raw.startswith(key.prefix)
    # Shown once: the next visit lists the prefix only.
    again = client.get(reverse("core:integrations")).content.decode()
    assert raw not in again and key.prefix in again
    client.post(reverse("core:revoke_key", args=[key.pk]))
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_key_without_name_shows_a_readable_error_and_creates_nothing(login):
    client = login("admin")
    resp = client.post(reverse("core:integrations"), {"name": " ", "scope": "write"}, follow=True)
    assert "A key needs a name." in resp.content.decode()
    assert ApiKey.objects.count() == 0


def test_manager_cannot_create_keys_and_nothing_changes(login):
    client = login("manager")
    resp = client.post(reverse("core:integrations"), {"name": "x", "scope": "write"})
    assert resp.status_code == 403
    assert ApiKey.objects.count() == 0
    assert AuditLog.objects.count() == 0


def test_healthz_reports_database_and_queue(client, db):
    resp = client.get(reverse("core:healthz"))
    assert resp.status_code == 200
    assert resp.json()["database"] == "ok" and resp.json()["queue"] == "ok"


def test_every_response_reports_server_time(client, db):
    resp = client.get(reverse("core:login"))
    name, dur = resp.headers["Server-Timing"].split(";dur=")
    assert name == "app" and float(dur) > 0
