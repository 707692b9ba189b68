"""Reads on customers, each applying the permission rules. The only way to get a customer a user may
see is `access_customer_for_user`; lists go through `customer_list_for_user`.

Apps above customers (commerce, ingest...) plug into the list, search and 360 page through the small
registries at the bottom of this module, so customers never imports them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import CharField, Exists, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Concat
from django.utils import timezone

from ecrm.core.exceptions import NotFound, PermissionDenied, ValidationFailed
from ecrm.core.models import ApiKey, ApiKeyScope
from ecrm.core.permissions import check_perm

from .models import (
    CandidateStatus,
    Consent,
    ConsentChannel,
    ConsentPurpose,
    CustomAttributeDefinition,
    Customer,
    CustomerMerge,
    CustomerStatus,
    CustomerTag,
    DuplicateCandidate,
    Identity,
    IdentityKind,
    LifecycleStage,
    Tag,
)
from .normalize import InvalidIdentifier, normalize_name, normalize_phone

# Upper bound for a prefix range: every string starting with `q` sorts in [q, q + U+FFFF).
PREFIX_END = "\uffff"
# A search resolved through identities/orders never yields more ids than this (an exact phone or
# email matches one customer; a short email prefix could match thousands, the first ones suffice).
MAX_SEARCH_IDS = 500
LAST_SEEN_CHOICES = ["7", "30", "90", "-30", "-90", "-365", "never"]

_PHONE_LIKE = re.compile(r"^\+?[\d\s\-().]{5,}$")


def check_customer_read(principal: Any) -> None:
    """Console users need customers.view; API keys need the read or write scope (not tracking-only)."""
    if isinstance(principal, ApiKey):
        if principal.scope not in (ApiKeyScope.READ, ApiKeyScope.WRITE):
            raise PermissionDenied("This API key may not read customers.", code="scope_denied")
        return
    check_perm(principal, "customers.view")


def access_customer_for_user(principal: Any, customer_id: int) -> Customer:
    check_customer_read(principal)
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        raise NotFound("No such customer.")
    return customer


# --- The customer list -------------------------------------------------------------------------


@dataclass
class CustomerFilters:
    """The list's filters as typed values (from a form or API query)."""

    q: str = ""
    tag: str = ""
    stage: str = ""
    country: str = ""
    has_orders: str = ""  # "", "yes", "no"
    last_seen: str = ""  # "", "7"/"30"/"90" (within N days), "-30"/"-90"/"-365" (older than), "never"
    extra: dict[str, str] = field(default_factory=dict)  # filters other apps register (choice_filters())

    @classmethod
    def from_params(cls, params: Any) -> CustomerFilters:
        get = params.get
        return cls(
            q=(get("q") or "").strip()[:200],
            tag=(get("tag") or "").strip(),
            stage=(get("stage") or "").strip(),
            country=(get("country") or "").strip().upper()[:2],
            has_orders=(get("has_orders") or "").strip(),
            last_seen=(get("last_seen") or "").strip(),
            extra={name: value for name in _CHOICE_FILTERS if (value := (get(name) or "").strip())},
        )

    def validate(self) -> None:
        errors = {}
        if self.stage and self.stage not in LifecycleStage.values:
            errors["stage"] = f"must be one of {', '.join(LifecycleStage.values)}"
        if self.has_orders not in ("", "yes", "no"):
            errors["has_orders"] = "must be yes or no"
        if self.last_seen and self.last_seen not in LAST_SEEN_CHOICES:
            errors["last_seen"] = f"must be one of {', '.join(LAST_SEEN_CHOICES)}"
        for name, value in self.extra.items():
            allowed = [str(v) for v, _label in _CHOICE_FILTERS[name].choices()]
            if value not in allowed:
                errors[name] = f"must be one of {', '.join(allowed)}"
        if errors:
            raise ValidationFailed("Some filters are not valid.", fields=errors)

    @property
    def active(self) -> bool:
        return any([self.q, self.tag, self.stage, self.country, self.has_orders, self.last_seen, self.extra])


@dataclass
class CustomerPage:
    customers: list[Customer]
    next_after: int | None


def search_customer_ids(q: str) -> list[int] | None:
    """Customers an exact identifier points to: email (exact or prefix), phone (any local format,
    normalised to E.164) and order number (through registered resolvers). None when `q` looks like
    a name, which is then searched by prefix on `search_name` instead."""
    q = q.strip()
    ids: list[int] = []
    for resolver in _SEARCH_RESOLVERS:
        ids.extend(resolver(q))
    if "@" in q:
        email = q.lower()
        ids.extend(
            Identity.objects.filter(kind=IdentityKind.EMAIL, value__gte=email, value__lt=email + PREFIX_END)
            .order_by("kind", "value")
            .values_list("customer_id", flat=True)[:MAX_SEARCH_IDS]
        )
        return ids
    if _PHONE_LIKE.match(q):
        try:
            phone = normalize_phone(q)
        except InvalidIdentifier:
            phone = None
        if phone:
            ids.extend(
                Identity.objects.filter(kind=IdentityKind.PHONE, value=phone).values_list(
                    "customer_id", flat=True
                )
            )
        return ids
    return ids if ids else None


# Above this many matches a filter is "dense": walking the (status, id) index newest-first and
# testing each row finds a page after a few hundred rows, while driving from the filter's own index
# would sort every match (100,000 rows for a common surname at 1M customers).
DENSE_MATCHES = 2000


def _is_dense(matches: QuerySet) -> bool:
    """One capped, index-only probe: are there more than DENSE_MATCHES matching rows?"""
    return matches.order_by()[DENSE_MATCHES : DENSE_MATCHES + 1].exists()


def _by_name(name: str) -> Q:
    by_index = Q(search_name__gte=name, search_name__lt=name + PREFIX_END)
    if not _is_dense(Customer.objects.filter(by_index)):
        return by_index
    # The same range on an expression the planner cannot use an index for, so it scans by id.
    return Q(_name_noindex__gte=name, _name_noindex__lt=name + PREFIX_END)


def _name_or_ids(q: str, ids: list[int] | None) -> Q:
    if ids is not None and not ids:
        return Q(pk__in=[])
    name = normalize_name(q)
    by_name = _by_name(name)
    if ids is None:
        return by_name
    if "@" in q or _PHONE_LIKE.match(q):
        return Q(pk__in=sorted(set(ids)))
    # A word that is also an order number: show the order's customer and name matches.
    return by_name | Q(pk__in=sorted(set(ids)))


def customer_queryset(filters: CustomerFilters) -> QuerySet[Customer]:
    """Active customers matching the filters, newest first. Each filter is written so an index can
    drive it (see docs in bench/customers.py): status+id, country+id, stage+id, tag+customer,
    search_name range, identity (kind, value)."""
    filters.validate()
    qs = Customer.objects.filter(status=CustomerStatus.ACTIVE).alias(
        _name_noindex=Concat("search_name", Value(""), output_field=CharField())
    )
    if filters.q:
        ids = search_customer_ids(filters.q)
        qs = qs.filter(_name_or_ids(filters.q, ids))
    if filters.stage:
        qs = qs.filter(lifecycle_stage=filters.stage)
    if filters.country:
        qs = qs.filter(country=filters.country)
    if filters.tag:
        tagged = CustomerTag.objects.filter(tag__name=filters.tag)
        if _is_dense(tagged):  # probe each newest customer through the (customer, tag) unique index
            qs = qs.filter(
                Exists(CustomerTag.objects.filter(customer_id=OuterRef("pk"), tag__name=filters.tag))
            )
        else:  # few tagged customers: start from the (tag, customer) index
            qs = qs.filter(pk__in=tagged.values("customer_id"))
    if filters.last_seen:
        now = timezone.now()
        if filters.last_seen == "never":
            qs = qs.filter(last_seen_at__isnull=True)
        elif filters.last_seen.startswith("-"):
            qs = qs.filter(last_seen_at__lt=now - dt.timedelta(days=int(filters.last_seen[1:])))
        else:
            qs = qs.filter(last_seen_at__gte=now - dt.timedelta(days=int(filters.last_seen)))
    if filters.has_orders:
        hook = _LIST_FILTERS.get("has_orders")
        if hook is not None:
            qs = hook(qs, filters.has_orders == "yes")
    for name, value in filters.extra.items():
        qs = _CHOICE_FILTERS[name].apply(qs, value)
    return qs.order_by("-id")


def customer_list_for_user(
    principal: Any, filters: CustomerFilters, *, after: int | None = None, limit: int | None = None
) -> CustomerPage:
    """One page of the list by keyset (`id < after`), never a COUNT(*) of the table: the next link
    exists when one more row than the page size came back."""
    check_customer_read(principal)
    limit = max(1, min(limit or settings.ECRM_PAGE_SIZE, 200))
    qs = customer_queryset(filters)
    if after:
        qs = qs.filter(pk__lt=after)
    rows = list(
        qs.only(
            "id",
            "display_name",
            "email",
            "phone",
            "city",
            "country",
            "lifecycle_stage",
            "last_seen_at",
            "created_at",
        )[: limit + 1]
    )
    more = len(rows) > limit
    rows = rows[:limit]
    tags_by_customer = tags_for_customers([c.pk for c in rows])
    for customer in rows:
        customer.tag_names = tags_by_customer.get(customer.pk, [])
    return CustomerPage(customers=rows, next_after=rows[-1].pk if more and rows else None)


def tags_for_customers(ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    if not ids:
        return out
    for customer_id, name in CustomerTag.objects.filter(customer_id__in=ids).values_list(
        "customer_id", "tag__name"
    ):
        out.setdefault(customer_id, []).append(name)
    for names in out.values():
        names.sort()
    return out


def all_tags() -> list[str]:
    return list(Tag.objects.order_by("name").values_list("name", flat=True)[:500])


# --- Customer 360 ------------------------------------------------------------------------------


def consent_grid(customer: Customer) -> list[dict]:
    """Purposes as rows, channels as cells, with the recorded answer where there is one."""
    recorded = {(c.purpose, c.channel): c for c in Consent.objects.filter(customer=customer)}
    return [
        {
            "purpose": purpose,
            "purpose_label": purpose_label,
            "cells": [
                {
                    "channel": channel,
                    "channel_label": channel_label,
                    "consent": recorded.get((purpose, channel)),
                }
                for channel, channel_label in ConsentChannel.choices
            ],
        }
        for purpose, purpose_label in ConsentPurpose.choices
    ]


def consent_channels() -> list[tuple[str, str]]:
    return list(ConsentChannel.choices)


def customer_tags(customer: Customer) -> list[str]:
    return list(
        CustomerTag.objects.filter(customer=customer)
        .order_by("tag__name")
        .values_list("tag__name", flat=True)
    )


def customer_identities(customer: Customer) -> list[Identity]:
    return list(Identity.objects.filter(customer=customer).order_by("kind", "value"))


def custom_attribute_rows(customer: Customer) -> list[dict]:
    return [
        {"definition": d, "value": customer.custom_attributes.get(d.key)}
        for d in CustomAttributeDefinition.objects.all()
    ]


def merge_history(customer: Customer) -> list[CustomerMerge]:
    return list(
        CustomerMerge.objects.filter(Q(survivor=customer) | Q(merged=customer))
        .select_related("survivor", "merged", "created_by", "unmerged_by")
        .order_by("-id")
    )


def latest_merge_of(customer: Customer) -> CustomerMerge | None:
    return (
        CustomerMerge.objects.filter(merged=customer, unmerged_at__isnull=True)
        .select_related("survivor")
        .first()
    )


def profile_panels(customer: Customer, user: Any) -> list[dict]:
    """Sections other apps add to the 360 page: [{template, context...}], in registration order."""
    panels = []
    for provider in _PROFILE_PANELS:
        panel = provider(customer, user)
        if panel is not None:
            panels.append(panel)
    return panels


def profile_stats(customer_ids: list[int]) -> dict[int, dict[str, Any]]:
    """{customer id: {stat: value}} from every registered provider (orders count, ...)."""
    out: dict[int, dict[str, Any]] = {pk: {} for pk in customer_ids}
    for name, provider in _PROFILE_STATS.items():
        for pk, value in provider(customer_ids).items():
            out.setdefault(pk, {})[name] = value
    return out


# --- Duplicates --------------------------------------------------------------------------------


def open_duplicates_for_user(
    user: Any, *, after_score: float | None = None, after_id: int | None = None, limit=50
):
    """Open pairs where both customers are still active, highest score first (keyset on score, id)."""
    check_perm(user, "customers.merge")
    qs = (
        DuplicateCandidate.objects.filter(
            status=CandidateStatus.OPEN,
            customer_a__status=CustomerStatus.ACTIVE,
            customer_b__status=CustomerStatus.ACTIVE,
        )
        .select_related("customer_a", "customer_b")
        .order_by("-score", "-id")
    )
    if after_score is not None and after_id is not None:
        qs = qs.filter(Q(score__lt=after_score) | Q(score=after_score, id__lt=after_id))
    rows = list(qs[: limit + 1])
    return rows[:limit], (rows[limit - 1] if len(rows) > limit else None)


def access_candidate_for_user(user: Any, candidate_id: int) -> DuplicateCandidate:
    check_perm(user, "customers.merge")
    candidate = (
        DuplicateCandidate.objects.select_related("customer_a", "customer_b").filter(pk=candidate_id).first()
    )
    if candidate is None:
        raise NotFound("No such duplicate pair.")
    return candidate


def access_merge_for_user(user: Any, merge_id: int) -> CustomerMerge:
    check_perm(user, "customers.merge")
    merge = CustomerMerge.objects.select_related("survivor", "merged").filter(pk=merge_id).first()
    if merge is None:
        raise NotFound("No such merge.")
    return merge


# --- Registries (filled by higher apps in AppConfig.ready) --------------------------------------

SearchResolver = Callable[[str], list[int]]
ListFilter = Callable[[QuerySet, bool], QuerySet]
ProfilePanel = Callable[[Customer, Any], "dict | None"]
ProfileStat = Callable[[list[int]], dict[int, Any]]

_SEARCH_RESOLVERS: list[SearchResolver] = []
_LIST_FILTERS: dict[str, ListFilter] = {}
_PROFILE_PANELS: list[ProfilePanel] = []
_PROFILE_STATS: dict[str, ProfileStat] = {}


def register_search_resolver(resolver: SearchResolver) -> None:
    """`resolver(q) -> [customer ids]` for exact identifiers another app owns (order numbers)."""
    if resolver not in _SEARCH_RESOLVERS:
        _SEARCH_RESOLVERS.append(resolver)


def register_list_filter(name: str, fn: ListFilter) -> None:
    """`fn(queryset, value) -> queryset` for the built-in "has_orders" filter, which commerce owns."""
    _LIST_FILTERS[name] = fn


@dataclass(frozen=True)
class ChoiceFilter:
    """A customer-list filter another app adds: a select control with `choices()` and `apply(qs, value)`."""

    name: str
    label: Any
    choices: Callable[[], list[tuple[str, Any]]]
    apply: Callable[[QuerySet, str], QuerySet]


_CHOICE_FILTERS: dict[str, ChoiceFilter] = {}


def register_choice_filter(
    name: str,
    *,
    label: Any,
    choices: Callable[[], list[tuple[str, Any]]],
    apply: Callable[[QuerySet, str], QuerySet],
) -> None:
    """Add a select to the customer list (and a query parameter to the list API), e.g. an RFM segment.
    `choices` is called when the list renders, so it may depend on data."""
    _CHOICE_FILTERS[name] = ChoiceFilter(name, label, choices, apply)


def choice_filters(filters: CustomerFilters) -> list[dict[str, Any]]:
    """The registered select controls with their current value, for the list template."""
    return [
        {"name": f.name, "label": f.label, "choices": f.choices(), "value": filters.extra.get(f.name, "")}
        for f in _CHOICE_FILTERS.values()
    ]


def register_profile_panel(provider: ProfilePanel) -> None:
    """`provider(customer, user) -> {"template": ..., ...context} | None` renders a 360 page section."""
    if provider not in _PROFILE_PANELS:
        _PROFILE_PANELS.append(provider)


def register_profile_stat(name: str, provider: ProfileStat) -> None:
    """`provider([customer ids]) -> {id: value}`; used by the merge rule and the comparison page."""
    _PROFILE_STATS[name] = provider
