"""Writes on customers: identity resolution, upsert, profile edits, tags, notes, consent.

Merge and unmerge live in `merge.py`; duplicate detection in `duplicates.py`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from ecrm.core import events
from ecrm.core.audit import record_audit, snapshot
from ecrm.core.exceptions import NotFound, ValidationFailed
from ecrm.core.models import ApiKey, User
from ecrm.core.permissions import check_perm

from .models import (
    AttributeType,
    Consent,
    ConsentChannel,
    ConsentPurpose,
    CustomAttributeDefinition,
    Customer,
    CustomerStatus,
    CustomerTag,
    Gender,
    Identity,
    IdentityKind,
    LifecycleStage,
    Note,
    Tag,
)
from .normalize import (
    InvalidIdentifier,
    display_name,
    normalize_email,
    normalize_identity,
    normalize_name,
    normalize_phone,
)

Actor = User | ApiKey | None

# Which identity decides the customer when identities point at different people: the most
# deliberate identifier wins (a shop account id over an email over a phone over a cookie).
IDENTITY_PRECEDENCE = [
    IdentityKind.EXTERNAL,
    IdentityKind.EMAIL,
    IdentityKind.PHONE,
    IdentityKind.WECHAT,
    IdentityKind.SOCIAL,
    IdentityKind.ANONYMOUS,
]

PROFILE_FIELDS = [
    "first_name",
    "last_name",
    "email",
    "phone",
    "birthday",
    "gender",
    "locale",
    "city",
    "country",
    "lifecycle_stage",
]


@dataclass
class Resolution:
    """What identity resolution decided for one set of identities."""

    customer: Customer
    created: bool = False
    attached: list[tuple[str, str]] = field(default_factory=list)
    conflicts: list[int] = field(default_factory=list)  # other customers that share one of the identities


def _check_actor(actor: Actor, capability: str) -> None:
    # API keys are authorised by scope at the API edge; console users by role here.
    if isinstance(actor, User):
        check_perm(actor, capability)


def normalize_identities(identities: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Normalise and de-duplicate; raises ValidationFailed naming the bad one."""
    seen: dict[tuple[str, str], None] = {}
    for kind, value in identities:
        try:
            seen[(kind, normalize_identity(kind, value))] = None
        except InvalidIdentifier as exc:
            raise ValidationFailed(str(exc), fields={f"identities.{kind}": str(exc)}) from exc
    return list(seen)


def clean_traits(traits: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalise profile traits; raises ValidationFailed with every bad field."""
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for key, value in traits.items():
        if value is None or value == "":
            continue
        try:
            if key == "email":
                clean[key] = normalize_email(value)
            elif key == "phone":
                clean[key] = normalize_phone(value)
            elif key == "birthday":
                clean[key] = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
            elif key == "gender":
                if value not in Gender.values:
                    raise ValueError(f"must be one of {', '.join(v for v in Gender.values if v)}")
                clean[key] = value
            elif key == "lifecycle_stage":
                if value not in LifecycleStage.values:
                    raise ValueError(f"must be one of {', '.join(LifecycleStage.values)}")
                clean[key] = value
            elif key == "country":
                if len(str(value)) != 2 or not str(value).isalpha():
                    raise ValueError("must be a two-letter ISO country code")
                clean[key] = str(value).upper()
            elif key in ("first_name", "last_name", "locale", "city"):
                clean[key] = str(value).strip()[:100]
            elif key == "custom_attributes":
                clean[key] = clean_custom_attributes(value)
            else:
                errors[key] = "unknown field"
        except (InvalidIdentifier, ValueError, TypeError) as exc:
            errors[key] = str(exc)
    if errors:
        raise ValidationFailed("Some fields are not valid: " + ", ".join(sorted(errors)), fields=errors)
    return clean


def clean_custom_attributes(values: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(values, dict):
        raise ValueError("must be an object")
    definitions = {d.key: d for d in CustomAttributeDefinition.objects.filter(key__in=list(values))}
    out: dict[str, Any] = {}
    for key, value in values.items():
        definition = definitions.get(key)
        if definition is None:
            raise ValueError(f"{key!r} is not a defined custom attribute")
        out[key] = coerce_attribute(definition, value)
    return out


def coerce_attribute(definition: CustomAttributeDefinition, value: Any) -> Any:
    if value is None or value == "":
        return None
    kind = definition.type
    try:
        if kind == AttributeType.NUMBER:
            number = Decimal(str(value))
            if not number.is_finite():
                raise InvalidOperation
            return float(number) if number != number.to_integral_value() else int(number)
        if kind == AttributeType.DATE:
            return (value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))).isoformat()
        if kind == AttributeType.BOOLEAN:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("true", "1", "yes", "y"):
                return True
            if text in ("false", "0", "no", "n"):
                return False
            raise ValueError
        if kind == AttributeType.CHOICE:
            if value not in definition.choices:
                raise ValueError
            return value
        return str(value)
    except (InvalidOperation, ValueError, TypeError):
        expected = f"one of {definition.choices}" if kind == AttributeType.CHOICE else f"a {kind}"
        raise ValueError(f"{definition.key!r} must be {expected}") from None


def _apply_traits(customer: Customer, traits: dict[str, Any], *, overwrite: bool) -> list[str]:
    """Set traits on the customer; returns the names of fields changed."""
    changed = []
    for key, value in traits.items():
        if key == "custom_attributes":
            merged = {**customer.custom_attributes, **value}
            merged = {k: v for k, v in merged.items() if v is not None}
            if merged != customer.custom_attributes:
                customer.custom_attributes = merged
                changed.append(key)
            continue
        current = getattr(customer, key)
        if current == value or (not overwrite and current not in (None, "")):
            continue
        setattr(customer, key, value)
        changed.append(key)
    if {"first_name", "last_name"} & set(changed) or not customer.display_name:
        name = display_name(customer.first_name, customer.last_name) or customer.display_name
        if name != customer.display_name:
            customer.display_name = name
            customer.search_name = normalize_name(name)
            changed += ["display_name", "search_name"]
    return changed


def _identities_from_traits(traits: dict[str, Any]) -> list[tuple[str, str]]:
    return [(kind, traits[kind]) for kind in ("email", "phone") if traits.get(kind)]


def resolve_customer(
    identities: list[tuple[str, str]], *, create: bool = True, source: str = "", traits: dict | None = None
) -> Resolution | None:
    """Find the customer these (already normalised) identities belong to, attach the new ones,
    and create a customer when none matches. Must run inside a transaction."""
    if not identities:
        raise ValidationFailed("At least one identity is needed.", fields={"identities": "required"})
    q = None
    from django.db.models import Q

    for kind, value in identities:
        cond = Q(kind=kind, value=value)
        q = cond if q is None else q | cond
    existing = list(
        Identity.objects.filter(q).select_related("customer").only("id", "kind", "value", "customer")
    )
    owners: dict[int, Customer] = {}
    for ident in sorted(existing, key=lambda i: IDENTITY_PRECEDENCE.index(i.kind)):
        owner = ident.customer
        # Follow merges: an identity left on a merged-away profile belongs to the survivor.
        while owner.status == CustomerStatus.MERGED and owner.merged_into_id:
            owner = Customer.objects.get(pk=owner.merged_into_id)
        owners.setdefault(owner.pk, owner)
    created = False
    if owners:
        customer = next(iter(owners.values()))
    elif create:
        customer = Customer(first_seen_at=timezone.now(), last_seen_at=timezone.now())
        _apply_traits(customer, {**(traits or {}), **dict(_primary_from(identities))}, overwrite=True)
        customer.save()
        created = True
    else:
        return None
    known = {(i.kind, i.value) for i in existing}
    attached = []
    for kind, value in identities:
        if (kind, value) in known:
            continue
        try:
            with transaction.atomic():
                Identity.objects.create(customer=customer, kind=kind, value=value, source=source)
            attached.append((kind, value))
        except IntegrityError:
            pass  # another request attached it first; it still resolves to one customer next time
    conflicts = [pk for pk in owners if pk != customer.pk]
    if conflicts:
        from .duplicates import record_candidate

        for other in conflicts:
            record_candidate(customer.pk, other, score=0.95, reasons=["shared identity"])
    return Resolution(customer=customer, created=created, attached=attached, conflicts=conflicts)


def _primary_from(identities: list[tuple[str, str]]) -> list[tuple[str, str]]:
    out = []
    for kind in ("email", "phone"):
        for k, v in identities:
            if k == kind:
                out.append((kind, v))
                break
    return out


def do_upsert_customer(
    *,
    identities: list[tuple[str, str]] | None = None,
    traits: dict[str, Any] | None = None,
    tags: list[str] | None = None,
    consents: list[dict[str, Any]] | None = None,
    actor: Actor,
    source: str = "api",
    overwrite: bool = True,
) -> Resolution:
    """Create or update the customer these identities (and the email/phone traits) point to."""
    _check_actor(actor, "customers.edit")
    clean = clean_traits(traits or {})
    ids = normalize_identities(list(identities or []) + _identities_from_traits(clean))
    with transaction.atomic():
        resolution = resolve_customer(ids, source=source, traits=clean)
        customer = resolution.customer
        before = snapshot(customer)
        changed = _apply_traits(customer, clean, overwrite=overwrite)
        if changed:
            customer.save(update_fields=[*set(changed), "updated_at"])
        if tags:
            _add_tags(customer, tags)
        for consent in consents or []:
            fields = {k: v for k, v in consent.items() if k != "source"}
            _set_consent(customer, **fields, source=consent.get("source") or source)
        if resolution.created:
            after = snapshot(customer)
            record_audit(actor=actor, action="customer.create", obj=customer, after=after)
            _emit(customer, "customer.created", {"fields": events.plain(after)}, actor)
        elif changed:
            after = snapshot(customer)
            record_audit(actor=actor, action="customer.update", obj=customer, before=before, after=after)
            _emit(customer, "customer.updated", {"changes": events.changes(before, after)}, actor)
    if resolution.created:
        from .duplicates import find_duplicates_for

        transaction.on_commit(lambda: find_duplicates_for(customer.pk))
    return resolution


def do_update_customer(*, customer: Customer, changes: dict[str, Any], actor: Actor) -> Customer:
    _check_actor(actor, "customers.edit")
    clean = clean_traits(changes)
    with transaction.atomic():
        locked = Customer.objects.select_for_update().get(pk=customer.pk)
        before = snapshot(locked)
        changed = _apply_traits(locked, clean, overwrite=True)
        for kind in ("email", "phone"):
            if kind in changed:
                Identity.objects.get_or_create(kind=kind, value=clean[kind], defaults={"customer": locked})
        if changed:
            locked.save(update_fields=[*set(changed), "updated_at"])
            after = snapshot(locked)
            record_audit(actor=actor, action="customer.update", obj=locked, before=before, after=after)
            _emit(locked, "customer.updated", {"changes": events.changes(before, after)}, actor)
    return locked


def _emit(customer: Customer, name: str, data: dict[str, Any], actor: Actor) -> None:
    events.emit(name, subject_type="customer", subject_id=customer.pk, data=data,
                actor=actor if isinstance(actor, User) else None)  # fmt: skip


def _add_tags(customer: Customer, names: list[str]) -> list[str]:
    added = []
    for raw in names:
        name = " ".join(str(raw).split())[:64]
        if not name:
            continue
        tag, _ = Tag.objects.get_or_create(name=name)
        _, created = CustomerTag.objects.get_or_create(customer=customer, tag=tag)
        if created:
            added.append(name)
    return added


def do_add_tag(*, customer: Customer, name: str, actor: Actor) -> bool:
    _check_actor(actor, "customers.edit")
    if not name.strip():
        raise ValidationFailed("A tag needs a name.", fields={"name": "This field is required."})
    with transaction.atomic():
        added = _add_tags(customer, [name])
        if added:
            record_audit(actor=actor, action="customer.tag_add", obj=customer, after={"tag": added[0]})
            _emit(
                customer,
                "customer.updated",
                {"changes": {"tags": [None, added[0]]}, "tag_added": added[0]},
                actor,
            )
    return bool(added)


def do_remove_tag(*, customer: Customer, name: str, actor: Actor) -> bool:
    _check_actor(actor, "customers.edit")
    with transaction.atomic():
        deleted, _ = CustomerTag.objects.filter(customer=customer, tag__name=name).delete()
        if deleted:
            record_audit(actor=actor, action="customer.tag_remove", obj=customer, before={"tag": name})
            _emit(
                customer, "customer.updated", {"changes": {"tags": [name, None]}, "tag_removed": name}, actor
            )
    return bool(deleted)


def do_add_note(*, customer: Customer, body: str, actor: Actor) -> Note:
    _check_actor(actor, "customers.edit")
    body = (body or "").strip()
    if not body:
        raise ValidationFailed("A note cannot be empty.", fields={"body": "This field is required."})
    if len(body) > 10_000:
        raise ValidationFailed("A note is at most 10,000 characters.", fields={"body": "Too long."})
    with transaction.atomic():
        note = Note.objects.create(
            customer=customer, body=body, author=actor if isinstance(actor, User) else None
        )
        record_audit(
            actor=actor, action="note.create", obj=note, after={"customer_id": customer.pk, "body": body}
        )
    return note


def _set_consent(
    customer: Customer, *, purpose: str, channel: str, granted: bool, source: str = "", recorded_at=None
) -> tuple[Consent, dict | None]:
    if purpose not in ConsentPurpose.values:
        raise ValidationFailed(f"Unknown consent purpose {purpose!r}.", fields={"purpose": "unknown"})
    if channel not in ConsentChannel.values:
        raise ValidationFailed(f"Unknown consent channel {channel!r}.", fields={"channel": "unknown"})
    consent = Consent.objects.filter(customer=customer, purpose=purpose, channel=channel).first()
    before = snapshot(consent) if consent else None
    if consent is None:
        consent = Consent(customer=customer, purpose=purpose, channel=channel)
    consent.granted = bool(granted)
    consent.source = source[:64]
    consent.recorded_at = recorded_at or timezone.now()
    consent.save()
    return consent, before


def do_set_consent(
    *, customer: Customer, purpose: str, channel: str, granted: bool, source: str, actor: Actor
) -> Consent:
    _check_actor(actor, "customers.edit")
    with transaction.atomic():
        consent, before = _set_consent(
            customer, purpose=purpose, channel=channel, granted=granted, source=source
        )
        record_audit(actor=actor, action="consent.set", obj=consent, before=before, after=snapshot(consent))
    return consent


def do_touch_seen(customer_ids: Iterable[int], at: dt.datetime) -> None:
    """Move last_seen forward (and set first_seen when unset) for customers active at `at`, in one
    UPDATE (it runs on every inbound message and tracked event)."""
    ids = list(set(customer_ids))
    if not ids:
        return
    Customer.objects.filter(Q(last_seen_at__lt=at) | Q(last_seen_at__isnull=True), pk__in=ids).update(
        last_seen_at=at, first_seen_at=Coalesce("first_seen_at", Value(at))
    )


def get_customer_or_404(customer_id: int) -> Customer:
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        raise NotFound("No such customer.")
    return customer
