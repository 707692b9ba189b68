from ecrm.core.models import ApiKey, AuditLog
from ecrm.core.services import authenticate_api_key, do_create_api_key, do_revoke_api_key


def test_key_is_stored_hashed_and_shown_once(db):
    key, raw = do_create_api_key(name="shop", scope="write", actor=None)
    assert raw.startswith("ecrm_")
    stored = ApiKey.objects.get(pk=key.pk)
    assert raw not in (stored.key_hash, stored.prefix)
    assert stored.prefix == raw[:12]
    assert authenticate_api_key(raw).pk == key.pk
    assert AuditLog.objects.filter(action="api_key.create", object_id=str(key.pk)).count() == 1


def test_revoked_key_gets_401_and_last_used_is_recorded(api_keys, cast):
    from conftest import ApiClient

    client = ApiClient(api_keys["read"])
    resp = client.get("/api/v1/whoami")
    assert resp.status_code == 200
    assert resp.json() == {"kind": "api_key", "name": "test-read", "scope": "read"}
    key = ApiKey.objects.get(name="test-read")
    assert key.last_used_at is not None
    do_revoke_api_key(key_id=key.pk, actor=cast["admin"])
    resp = client.get("/api/v1/whoami")
    assert resp.status_code == 401
    assert resp.json()["code"] == "unauthorized"


def test_missing_key_gets_401(api_anon):
    resp = api_anon.get("/api/v1/whoami")
    assert resp.status_code == 401


def test_only_admin_may_revoke_and_nothing_changes(api_keys, cast):
    import pytest

    from ecrm.core.exceptions import PermissionDenied

    key = ApiKey.objects.get(name="test-write")
    with pytest.raises(PermissionDenied):
        do_revoke_api_key(key_id=key.pk, actor=cast["manager"])
    key.refresh_from_db()
    assert key.revoked_at is None
    assert not AuditLog.objects.filter(action="api_key.revoke").exists()


def test_create_api_key_command_prints_a_working_key(db, capsys):
    from django.core.management import call_command

    call_command("create_api_key", name="ci", scope="write")
    raw = capsys.readouterr().out.strip()
    key = authenticate_api_key(raw)
    assert key is not None and key.name == "ci" and key.scope == "write"
