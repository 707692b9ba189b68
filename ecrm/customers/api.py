"""Customers API: upsert by identities, keyset-paged list with filters, detail, merge and unmerge.

Reading needs a read or write key (or a console user with customers.view); upsert needs a write
key; merge and unmerge are for console users with customers.merge only (never integration keys).
"""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Query, Router, Schema
from ninja.responses import Status

from ecrm.core.api_auth import actor_of, require_write

from . import selectors
from .merge import do_merge_customers, do_unmerge
from .models import Customer, CustomerMerge
from .schemas import CustomerOut, CustomerPageOut, CustomerUpsertIn, MergeIn, MergeOut
from .services import do_upsert_customer

router = Router(tags=["customers"])


class ListQuery(Schema):
    q: str = ""
    tag: str = ""
    stage: str = ""
    country: str = ""
    has_orders: str = ""
    last_seen: str = ""
    after: int | None = None
    limit: int = 50


def customer_out(customer: Customer, created: bool = False) -> dict:
    return {
        **{f.attname: getattr(customer, f.attname) for f in Customer._meta.concrete_fields if f.attname != "merged_into_id"},
        "merged_into": customer.merged_into_id,
        "tags": selectors.customer_tags(customer),
        "identities": selectors.customer_identities(customer),
        "consents": [cell["consent"] for row in selectors.consent_grid(customer) for cell in row["cells"] if cell["consent"]],
        "created": created,
    }


def merge_out(merge: CustomerMerge) -> dict:
    return {
        "id": merge.pk,
        "survivor_id": merge.survivor_id,
        "merged_id": merge.merged_id,
        "moved": {key: len(ids) for key, ids in merge.moved.items()},
        "field_choices": merge.field_choices,
        "created_at": merge.created_at,
        "unmerged_at": merge.unmerged_at,
    }


@router.post("", response={200: CustomerOut, 201: CustomerOut}, summary="Create or update a customer")
def upsert_customer(request: HttpRequest, payload: CustomerUpsertIn):
    """Resolves the identities (and the email/phone traits) to one customer, creating it when none
    matches, then applies traits, tags and consents. 201 when created, 200 when updated."""
    require_write(request)
    resolution = do_upsert_customer(
        identities=[(i.kind, i.value) for i in payload.identities],
        traits=payload.traits,
        tags=payload.tags,
        consents=[c.dict() for c in payload.consents],
        actor=actor_of(request),
        source="api",
    )
    customer = Customer.objects.get(pk=resolution.customer.pk)
    return Status(201 if resolution.created else 200, customer_out(customer, created=resolution.created))


@router.get("", response=CustomerPageOut, summary="List customers (keyset pages, newest first)")
def list_customers(request: HttpRequest, query: Query[ListQuery]):
    filters = selectors.CustomerFilters.from_params(query.dict())
    page = selectors.customer_list_for_user(request.auth, filters, after=query.after, limit=query.limit)
    return {
        "items": [{**{f: getattr(c, f) for f in (
            "id", "display_name", "email", "phone", "city", "country", "lifecycle_stage", "last_seen_at", "created_at"
        )}, "tags": c.tag_names} for c in page.customers],
        "next_after": page.next_after,
    }


@router.get("/{int:customer_id}", response=CustomerOut, summary="One customer with identities, tags and consent")
def get_customer(request: HttpRequest, customer_id: int):
    return customer_out(selectors.access_customer_for_user(request.auth, customer_id))


@router.post("/{int:customer_id}/merge", response={201: MergeOut}, summary="Merge another customer into this one")
def merge_customer(request: HttpRequest, customer_id: int, payload: MergeIn):
    survivor = selectors.access_customer_for_user(request.auth, customer_id)
    merged = selectors.access_customer_for_user(request.auth, payload.merged_id)
    candidate = (
        selectors.access_candidate_for_user(request.auth, payload.candidate_id) if payload.candidate_id else None
    )
    merge = do_merge_customers(
        survivor=survivor, merged=merged, actor=request.auth, field_choices=payload.field_choices, candidate=candidate
    )
    return Status(201, merge_out(merge))


@router.post("/merges/{int:merge_id}/unmerge", response=MergeOut, summary="Undo a merge, restoring both customers")
def unmerge_customer(request: HttpRequest, merge_id: int):
    merge = selectors.access_merge_for_user(request.auth, merge_id)
    return merge_out(do_unmerge(merge=merge, actor=request.auth))
