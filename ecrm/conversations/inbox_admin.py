"""Changes to an inbox's settings from the console (creation is `services.create_inbox`)."""

from __future__ import annotations

from django.db import transaction

from ecrm.core.audit import record_audit
from ecrm.core.exceptions import ValidationFailed
from ecrm.core.models import Team, User
from ecrm.core.permissions import check_perm

from .models import Inbox


def do_update_inbox(
    *, actor: User, inbox: Inbox, name: str, team: Team | None, config: dict | None, auto_assign: bool,
    is_active: bool,
) -> Inbox:  # fmt: skip
    """Rename, move, reconfigure (validated by the channel adapter's schema) or switch an inbox off.
    The channel kind never changes: existing conversations were received through it."""
    check_perm(actor, "conversations.configure")
    if not (name or "").strip():
        raise ValidationFailed("Give the inbox a name.", fields={"name": "required"})
    from .channels import get_adapter

    clean = get_adapter(inbox.kind).validate_config(config)
    with transaction.atomic():
        row = Inbox.objects.select_for_update().get(pk=inbox.pk)
        before = {"name": row.name, "team": row.team_id, "auto_assign": row.auto_assign,
                  "is_active": row.is_active, "config_keys": sorted(row.config)}  # fmt: skip
        row.name, row.team, row.config = name.strip(), team, clean
        row.auto_assign, row.is_active = auto_assign, is_active
        row.save(update_fields=["name", "team", "config", "auto_assign", "is_active"])
        # secrets may be in the config: the audit keeps only which keys it has
        record_audit(actor=actor, action="inbox.update", obj=row, before=before,
                     after={"name": row.name, "team": row.team_id, "auto_assign": auto_assign,
                            "is_active": is_active, "config_keys": sorted(clean)})  # fmt: skip
    return row
