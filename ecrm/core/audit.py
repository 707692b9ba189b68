"""The audit trail: every service write records who changed what, with values before and after."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from django.db import models

from .models import ApiKey, AuditLog, User


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    return value


def snapshot(instance: models.Model, fields: list[str] | None = None) -> dict[str, Any]:
    """The concrete field values of `instance` (foreign keys as ids), JSON-ready."""
    data = {}
    for field in instance._meta.concrete_fields:
        if fields is not None and field.name not in fields:
            continue
        data[field.attname] = _jsonable(getattr(instance, field.attname))
    return data


def actor_parts(actor: User | ApiKey | None) -> tuple[User | None, str]:
    if isinstance(actor, User):
        return actor, actor.get_username()
    if isinstance(actor, ApiKey):
        return None, f"api-key:{actor.name}"
    return None, "system"


def record_audit(
    *,
    actor: User | ApiKey | None,
    action: str,
    obj: models.Model | None = None,
    object_type: str | None = None,
    object_id: Any = None,
    before: dict | None = None,
    after: dict | None = None,
) -> AuditLog:
    user, label = actor_parts(actor)
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = obj.pk if object_id is None else object_id
    if before is not None and after is not None:
        # Store only what changed, so the log stays readable and small.
        changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
        before = {k: before.get(k) for k in sorted(changed)}
        after = {k: after.get(k) for k in sorted(changed)}
    return AuditLog.objects.create(
        actor=user,
        actor_label=label,
        action=action,
        object_type=object_type or "",
        object_id=str(object_id),
        before=_jsonable(before),
        after=_jsonable(after),
    )
