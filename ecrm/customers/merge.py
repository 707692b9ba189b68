"""Merge two customers into one, and unmerge them again exactly.

A merge moves *everything* that points at the merged customer to the survivor. It does so
generically over `Customer._meta.related_objects`, so relations added later by other apps (orders,
events, conversations, tickets...) move without this module knowing them, and records the moved
row ids per relation in `CustomerMerge.moved`. Relations with a unique constraint that includes the
customer (tags, consents) cannot simply be re-pointed and are handled by `_MERGE_HANDLERS`.

Unmerge moves the recorded rows back, restores both customers' fields, tags and consents from the
snapshots taken at merge time, and leaves with the survivor whatever arrived after the merge.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from ecrm.core.audit import record_audit, snapshot
from ecrm.core.exceptions import Conflict, PermissionDenied, ValidationFailed
from ecrm.core.models import User
from ecrm.core.permissions import check_perm

from .models import (
    CandidateStatus,
    Consent,
    Customer,
    CustomerMerge,
    CustomerStatus,
    CustomerTag,
    DuplicateCandidate,
)
from .normalize import display_name, normalize_name

# The fields a reviewer may choose between (the rest are derived or bookkeeping).
MERGE_FIELDS = [
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
# Relations that are history of merges themselves and must never move.
_NEVER_MOVE = {CustomerMerge}
_CHUNK = 500  # ids per UPDATE: well under SQLite's bound-parameter limit


def _check_merger(actor: Any) -> None:
    if not isinstance(actor, User):
        raise PermissionDenied("Only a console user with merge rights can merge customers.", code="forbidden:customers.merge")
    check_perm(actor, "customers.merge")


def _empty(value: Any) -> bool:
    return value in (None, "", {}, [])


def customer_state(customer: Customer) -> dict[str, Any]:
    """Everything a merge may change on one customer, JSON-ready: fields, tag rows, consent rows."""
    return {
        "fields": snapshot(customer),
        "tags": [snapshot(t) for t in CustomerTag.objects.filter(customer=customer).order_by("pk")],
        "consents": [snapshot(c) for c in Consent.objects.filter(customer=customer).order_by("pk")],
    }


def default_field_choices(survivor: Customer, merged: Customer) -> dict[str, str]:
    """The stated rule: the survivor's value, unless it is empty and the merged one is not."""
    choices = {}
    for name in MERGE_FIELDS:
        mine, theirs = getattr(survivor, name), getattr(merged, name)
        if mine == theirs or _empty(theirs):
            continue
        choices[name] = "merged" if _empty(mine) else "survivor"
    return choices


def conflicting_fields(a: Customer, b: Customer) -> list[str]:
    return [n for n in MERGE_FIELDS if getattr(a, n) != getattr(b, n) and not _empty(getattr(a, n)) and not _empty(getattr(b, n))]


def _related_relations() -> list[models.ForeignObjectRel]:
    rels = []
    for rel in Customer._meta.related_objects:
        if rel.many_to_many or rel.related_model in _NEVER_MOVE:
            continue
        if rel.related_model is Customer:  # merged_into chains are followed, never re-pointed
            continue
        rels.append(rel)
    return rels


def _relation_key(rel: models.ForeignObjectRel) -> str:
    return f"{rel.related_model._meta.label_lower}.{rel.field.name}"


def _move(model: type[models.Model], field_name: str, ids: list[int], to_id: int) -> None:
    for start in range(0, len(ids), _CHUNK):
        model._base_manager.filter(pk__in=ids[start : start + _CHUNK]).update(**{f"{field_name}_id": to_id})


# --- Unique-per-customer relations -------------------------------------------------------------


def _merge_tags(survivor: Customer, merged: Customer) -> list[int]:
    """Union: the merged customer's tags the survivor lacks move; shared ones are dropped (they are
    in the snapshot and come back on unmerge)."""
    have = set(CustomerTag.objects.filter(customer=survivor).values_list("tag_id", flat=True))
    rows = list(CustomerTag.objects.filter(customer=merged).values_list("pk", "tag_id"))
    move = [pk for pk, tag_id in rows if tag_id not in have]
    drop = [pk for pk, tag_id in rows if tag_id in have]
    _move(CustomerTag, "customer", move, survivor.pk)
    CustomerTag.objects.filter(pk__in=drop).delete()
    return move


def _merge_consents(survivor: Customer, merged: Customer) -> list[int]:
    """Per purpose and channel the most recent answer wins. The survivor's previous rows are in
    `survivor_before`, so unmerge can put them back."""
    mine = {(c.purpose, c.channel): c for c in Consent.objects.filter(customer=survivor)}
    move = []
    for theirs in Consent.objects.filter(customer=merged):
        current = mine.get((theirs.purpose, theirs.channel))
        if current is None:
            move.append(theirs.pk)
            continue
        if theirs.recorded_at > current.recorded_at:
            current.granted, current.source, current.recorded_at = theirs.granted, theirs.source, theirs.recorded_at
            current.save(update_fields=["granted", "source", "recorded_at"])
        theirs.delete()
    _move(Consent, "customer", move, survivor.pk)
    return move


_MERGE_HANDLERS = {CustomerTag: _merge_tags, Consent: _merge_consents}


# --- Merge -------------------------------------------------------------------------------------


def _apply_fields(survivor: Customer, merged: Customer, choices: dict[str, str]) -> list[str]:
    changed = []
    for name in MERGE_FIELDS:
        if choices.get(name) == "merged" and getattr(survivor, name) != getattr(merged, name):
            setattr(survivor, name, getattr(merged, name))
            changed.append(name)
    if {"first_name", "last_name"} & set(changed):
        survivor.display_name = display_name(survivor.first_name, survivor.last_name) or survivor.display_name
        survivor.search_name = normalize_name(survivor.display_name)
        changed += ["display_name", "search_name"]
    attrs = {**merged.custom_attributes, **survivor.custom_attributes}  # survivor's value wins per key
    if attrs != survivor.custom_attributes:
        survivor.custom_attributes = attrs
        changed.append("custom_attributes")
    for name, pick in (("first_seen_at", min), ("last_seen_at", max)):
        values = [v for v in (getattr(survivor, name), getattr(merged, name)) if v is not None]
        if values and pick(values) != getattr(survivor, name):
            setattr(survivor, name, pick(values))
            changed.append(name)
    return changed


def do_merge_customers(
    *,
    survivor: Customer,
    merged: Customer,
    actor: Any,
    field_choices: dict[str, str] | None = None,
    candidate: DuplicateCandidate | None = None,
) -> CustomerMerge:
    """Merge `merged` into `survivor`; returns the merge record (the key to unmerge)."""
    _check_merger(actor)
    if survivor.pk == merged.pk:
        raise ValidationFailed("A customer cannot be merged with itself.", fields={"merged": "same customer"})
    bad = {k: v for k, v in (field_choices or {}).items() if k not in MERGE_FIELDS or v not in ("survivor", "merged")}
    if bad:
        raise ValidationFailed(
            "Unknown field choices.", fields={f"field_choices.{k}": "must be survivor or merged" for k in bad}
        )
    with transaction.atomic():
        # Lock both rows in id order so two concurrent merges of the same pair cannot deadlock.
        locked = {c.pk: c for c in Customer.objects.select_for_update().filter(pk__in=[survivor.pk, merged.pk]).order_by("pk")}
        if len(locked) != 2:
            raise Conflict("One of the customers no longer exists.")
        survivor, merged = locked[survivor.pk], locked[merged.pk]
        for c in (survivor, merged):
            if c.status != CustomerStatus.ACTIVE:
                raise Conflict(f"Customer #{c.pk} has already been merged into another customer.", code="already_merged")
        choices = {**default_field_choices(survivor, merged), **(field_choices or {})}
        survivor_before, merged_before = customer_state(survivor), customer_state(merged)

        moved: dict[str, list[int]] = {}
        for rel in _related_relations():
            key = _relation_key(rel)
            handler = _MERGE_HANDLERS.get(rel.related_model)
            if handler is not None:
                ids = handler(survivor, merged)
            else:
                model, field_name = rel.related_model, rel.field.name
                ids = list(model._base_manager.filter(**{field_name: merged}).order_by("pk").values_list("pk", flat=True))
                _move(model, field_name, ids, survivor.pk)
            if ids:
                moved[key] = ids

        changed = _apply_fields(survivor, merged, choices)
        now = timezone.now()
        survivor.save(update_fields=[*changed, "updated_at"]) if changed else survivor.save(update_fields=["updated_at"])
        merged.status, merged.merged_into = CustomerStatus.MERGED, survivor
        merged.save(update_fields=["status", "merged_into", "updated_at"])

        # Review-queue entries about the merged customer are settled by this merge; remember their
        # previous status so unmerge re-opens them.
        candidates = {}
        for dup in DuplicateCandidate.objects.filter(
            Q(customer_a=merged) | Q(customer_b=merged), status=CandidateStatus.OPEN
        ).select_for_update():
            candidates[str(dup.pk)] = {"status": dup.status, "resolved_at": None, "resolved_by_id": None}
            dup.status, dup.resolved_at, dup.resolved_by = CandidateStatus.MERGED, now, actor
            dup.save(update_fields=["status", "resolved_at", "resolved_by"])

        record = CustomerMerge.objects.create(
            survivor=survivor,
            merged=merged,
            candidate=candidate,
            survivor_before=survivor_before,
            merged_before=merged_before,
            survivor_after=customer_state(survivor),
            moved=moved,
            field_choices=choices,
            candidates=candidates,
            created_by=actor,
        )
        record_audit(
            actor=actor,
            action="customer.merge",
            obj=survivor,
            before=survivor_before["fields"],
            after={**snapshot(survivor), "merged_customer_id": merged.pk, "merge_id": record.pk},
        )
    return record


# --- Unmerge -----------------------------------------------------------------------------------


def _restore_rows(model: type[models.Model], rows: list[dict]) -> None:
    """Re-create rows exactly (same primary keys) from their snapshots."""
    objs = []
    for row in rows:
        obj = model()
        for field in model._meta.concrete_fields:
            value = row.get(field.attname)
            if value is not None and isinstance(field, models.DateTimeField):
                value = dt.datetime.fromisoformat(value)
            setattr(obj, field.attname, value)
        objs.append(obj)
    model.objects.bulk_create(objs)


def _field_values(fields: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for field in Customer._meta.concrete_fields:
        if field.primary_key or field.attname not in fields:
            continue
        value = fields[field.attname]
        if value is not None and isinstance(field, models.DateTimeField):
            value = dt.datetime.fromisoformat(value)
        elif value is not None and isinstance(field, models.DateField):
            value = dt.date.fromisoformat(value)
        out[field.attname] = value
    return out


def check_can_unmerge(merge: CustomerMerge) -> None:
    if merge.unmerged_at is not None:
        raise Conflict("This merge has already been undone.", code="already_unmerged")
    later = (
        CustomerMerge.objects.filter(
            Q(survivor_id__in=[merge.survivor_id, merge.merged_id]) | Q(merged_id__in=[merge.survivor_id, merge.merged_id]),
            unmerged_at__isnull=True,
            pk__gt=merge.pk,
        )
        .order_by("-pk")
        .first()
    )
    if later is not None:
        raise Conflict(
            f"Customer #{merge.survivor_id} was merged again afterwards (merge #{later.pk}: "
            f"#{later.merged_id} into #{later.survivor_id}). Undo that merge first.",
            code="later_merge_exists",
        )


def do_unmerge(*, merge: CustomerMerge, actor: Any) -> CustomerMerge:
    """Restore both customers as they were before `merge`."""
    _check_merger(actor)
    with transaction.atomic():
        merge = CustomerMerge.objects.select_for_update().get(pk=merge.pk)
        locked = {
            c.pk: c
            for c in Customer.objects.select_for_update().filter(pk__in=[merge.survivor_id, merge.merged_id]).order_by("pk")
        }
        survivor, merged = locked[merge.survivor_id], locked[merge.merged_id]
        check_can_unmerge(merge)
        survivor_now = snapshot(survivor)

        # 1. Plain relations: the recorded rows still on the survivor go back. Rows that reached the
        #    survivor after the merge were never recorded and stay.
        relations = {_relation_key(rel): rel for rel in _related_relations()}
        for key, ids in merge.moved.items():
            rel = relations.get(key)
            if rel is None or rel.related_model in _MERGE_HANDLERS:
                continue
            model, field_name = rel.related_model, rel.field.name
            for start in range(0, len(ids), _CHUNK):
                model._base_manager.filter(pk__in=ids[start : start + _CHUNK], **{field_name: survivor}).update(
                    **{f"{field_name}_id": merged.pk}
                )

        # 2. Tags: the merged customer gets exactly its old rows; the survivor loses the moved ones.
        merged_tags = merge.merged_before["tags"]
        CustomerTag.objects.filter(pk__in=[t["id"] for t in merged_tags]).delete()
        CustomerTag.objects.filter(customer=merged).delete()
        _restore_rows(CustomerTag, merged_tags)

        # 3. Consents: the merged customer gets exactly its old rows back (moved ones leave the
        #    survivor); on the survivor, answers the merge overwrote are restored unless they changed
        #    again after the merge.
        merged_consents = merge.merged_before["consents"]
        Consent.objects.filter(pk__in=[c["id"] for c in merged_consents]).delete()
        Consent.objects.filter(customer=merged).delete()
        _restore_rows(Consent, merged_consents)
        after_consents = {c["id"]: c for c in (merge.survivor_after or {}).get("consents", [])}
        current = {c.pk: snapshot(c) for c in Consent.objects.filter(customer=survivor)}
        for row in merge.survivor_before["consents"]:
            if row["id"] in current and current[row["id"]] == after_consents.get(row["id"]):
                Consent.objects.filter(pk=row["id"]).update(
                    granted=row["granted"], source=row["source"], recorded_at=dt.datetime.fromisoformat(row["recorded_at"])
                )

        # 4. Fields: the merged customer exactly as before; on the survivor, every field the merge
        #    changed goes back unless someone edited it since (then the later edit stays).
        Customer.objects.filter(pk=merged.pk).update(**_field_values(merge.merged_before["fields"]))
        before, after = merge.survivor_before["fields"], (merge.survivor_after or {}).get("fields", {})
        restore = {name: before[name] for name in before if name != "id" and survivor_now.get(name) == after.get(name)}
        Customer.objects.filter(pk=survivor.pk).update(**_field_values(restore))

        # 5. Re-open the review-queue entries the merge settled.
        for pk, previous in (merge.candidates or {}).items():
            DuplicateCandidate.objects.filter(pk=int(pk)).update(
                status=previous["status"], resolved_at=None, resolved_by=None
            )

        merge.unmerged_at, merge.unmerged_by = timezone.now(), actor
        merge.save(update_fields=["unmerged_at", "unmerged_by"])
        record_audit(
            actor=actor,
            action="customer.unmerge",
            obj=survivor,
            before=survivor_now,
            after={**snapshot(Customer.objects.get(pk=survivor.pk)), "restored_customer_id": merged.pk, "merge_id": merge.pk},
        )
    return merge
