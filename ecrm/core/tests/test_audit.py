import pytest
from django.urls import reverse

from ecrm.core.audit import record_audit, snapshot
from ecrm.core.models import AuditLog


def test_audit_records_only_changed_fields_with_actor(cast):
    user = cast["agent_li"]
    before = snapshot(user, ["first_name", "last_name"])
    user.first_name = "Wei-Wei"
    entry = record_audit(
        actor=cast["admin"],
        action="user.update",
        obj=user,
        before=before,
        after=snapshot(user, ["first_name", "last_name"]),
    )
    assert entry.actor == cast["admin"]
    assert entry.actor_label == "admin"
    assert entry.object_type == "core.user" and entry.object_id == str(user.pk)
    assert entry.before == {"first_name": "Wei"}
    assert entry.after == {"first_name": "Wei-Wei"}


def test_audit_log_is_append_only(cast):
    entry = record_audit(actor=None, action="x", object_type="t", object_id=1, after={"a": 1})
    assert entry.actor_label == "system"
    entry.action = "changed"
    with pytest.raises(ValueError):
        entry.save()
    with pytest.raises(ValueError):
        entry.delete()
    assert AuditLog.objects.get(pk=entry.pk).action == "x"


def test_audit_page_for_managers_not_agents(login, cast):
    record_audit(
        actor=cast["admin"],
        action="api_key.create",
        object_type="core.apikey",
        object_id=9,
        after={"name": "k"},
    )
    assert login("agent_bob").get(reverse("core:audit_log")).status_code == 403
    page = login("manager").get(reverse("core:audit_log"), {"type": "core.apikey"}).content.decode()
    assert "api_key.create" in page and "core.apikey #9" in page
