"""Writes on custom attribute definitions (admins define typed customer fields)."""

from __future__ import annotations

import re
from typing import Any

from django.db import IntegrityError, transaction

from ecrm.core.audit import record_audit, snapshot
from ecrm.core.exceptions import Conflict, ValidationFailed
from ecrm.core.permissions import check_perm

from .models import AttributeType, CustomAttributeDefinition

_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def do_define_attribute(*, key: str, label: str, type: str, choices: list[str] | None = None, actor: Any):
    check_perm(actor, "customers.configure")
    key, label = (key or "").strip().lower(), (label or "").strip()
    errors = {}
    if not _KEY_RE.match(key):
        errors["key"] = "Use lower-case letters, digits and underscores, starting with a letter."
    if not label:
        errors["label"] = "This field is required."
    if type not in AttributeType.values:
        errors["type"] = f"Must be one of {', '.join(AttributeType.values)}."
    clean_choices = [c.strip() for c in (choices or []) if c.strip()]
    if type == AttributeType.CHOICE and not clean_choices:
        errors["choices"] = "A choice attribute needs at least one choice."
    if errors:
        raise ValidationFailed("The attribute is not valid.", fields=errors)
    try:
        with transaction.atomic():
            definition = CustomAttributeDefinition.objects.create(
                key=key, label=label[:100], type=type, choices=clean_choices if type == AttributeType.CHOICE else []
            )
            record_audit(actor=actor, action="attribute.define", obj=definition, after=snapshot(definition))
    except IntegrityError:
        raise Conflict(f"An attribute with the key {key!r} already exists.", fields={"key": "already exists"}) from None
    return definition


def do_delete_attribute(*, definition: CustomAttributeDefinition, actor: Any) -> None:
    """Removes the definition; stored values stay in customers' JSON (harmless, and restorable)."""
    check_perm(actor, "customers.configure")
    with transaction.atomic():
        before = snapshot(definition)
        definition.delete()
        record_audit(actor=actor, action="attribute.delete", object_type="customers.customattributedefinition",
                     object_id=before["id"], before=before)
