"""Console pages for customers: the list, the Customer 360 page with its in-place edits, the
duplicate review queue, merge/unmerge and the custom attribute definitions. Views parse, call one
selector or service, and render; htmx requests get the partial they swap."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from ecrm.core.exceptions import EcrmError, NotFound, ValidationFailed
from ecrm.core.permissions import has_perm
from ecrm.core.web import console_view, flash_error

from . import selectors
from .attributes import do_define_attribute, do_delete_attribute
from .duplicates import do_dismiss_candidate
from .forms import AttributeDefinitionForm, ConsentForm, CustomerFilterForm, field_choices_from_post
from .merge import MERGE_FIELDS, check_can_unmerge, default_field_choices, do_merge_customers, do_unmerge
from .models import CustomAttributeDefinition, Customer
from .services import (
    coerce_attribute,
    do_add_note,
    do_add_tag,
    do_remove_tag,
    do_set_consent,
    do_update_customer,
)
from .timeline import build_timeline, note_entry


def _int(value, default=None):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


# --- List --------------------------------------------------------------------------------------


@console_view("customers.view")
def customer_list(request: HttpRequest) -> HttpResponse:
    filters = selectors.CustomerFilters.from_params(request.GET)
    error = None
    try:
        page = selectors.customer_list_for_user(request.user, filters, after=_int(request.GET.get("after")))
    except ValidationFailed as exc:
        page, error = selectors.CustomerPage(customers=[], next_after=None), exc
    params = request.GET.copy()
    params.pop("after", None)
    context = {
        "page": page,
        "filters": filters,
        "error": error,
        "choice_filters": selectors.choice_filters(filters),
        "form": CustomerFilterForm(
            request.GET or None, tags=selectors.all_tags() if not request.htmx else []
        ),
        "base_query": params.urlencode(),
        "is_first_page": not request.GET.get("after"),
    }
    template = "customers/partials/_results.html" if request.htmx else "customers/list.html"
    return render(request, template, context)


# --- Customer 360 ------------------------------------------------------------------------------


def _detail_context(request: HttpRequest, customer: Customer) -> dict:
    return {
        "customer": customer,
        "identities": selectors.customer_identities(customer),
        "tags": selectors.customer_tags(customer),
        "consents": selectors.consent_grid(customer),
        "consent_channels": selectors.consent_channels(),
        "attributes": selectors.custom_attribute_rows(customer),
        "merges": selectors.merge_history(customer),
        "merged_into": selectors.latest_merge_of(customer) if customer.is_merged else None,
        "panels": selectors.profile_panels(customer, request.user),
        "timeline": build_timeline(customer, user=request.user),
        "can_edit": has_perm(request.user, "customers.edit"),
        "can_merge": has_perm(request.user, "customers.merge"),
    }


@console_view("customers.view")
def customer_detail(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = selectors.access_customer_for_user(request.user, customer_id)
    return render(request, "customers/detail.html", _detail_context(request, customer))


@console_view("customers.view")
def timeline(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = selectors.access_customer_for_user(request.user, customer_id)
    page = build_timeline(customer, user=request.user, cursor=request.GET.get("cursor"))
    return render(
        request, "customers/partials/_timeline_entries.html", {"customer": customer, "timeline": page}
    )


def _edit_response(request, customer, template, context, exc: EcrmError | None = None):
    context = {"customer": customer, "can_edit": True, "error": exc, **context}
    if request.htmx:
        # 200 even for a refused edit: htmx only swaps successful responses, and the partial shows
        # the readable error in place.
        return render(request, template, context)
    if exc is not None:
        flash_error(request, exc)
    return redirect("customers:detail", customer.pk)


@require_POST
@console_view("customers.edit")
def add_note(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = selectors.access_customer_for_user(request.user, customer_id)
    try:
        note = do_add_note(customer=customer, body=request.POST.get("body", ""), actor=request.user)
    except ValidationFailed as exc:
        response = _edit_response(request, customer, "customers/partials/_note_error.html", {}, exc)
        if request.htmx:
            response["HX-Retarget"], response["HX-Reswap"] = "#note-error", "innerHTML"
        return response
    if request.htmx:
        return render(
            request, "customers/partials/_timeline_entry.html", {"entry": note_entry(note), "new": True}
        )
    messages.success(request, _("Note added."))
    return redirect("customers:detail", customer.pk)


def _tags_response(request, customer, exc=None):
    return _edit_response(
        request, customer, "customers/partials/_tags.html", {"tags": selectors.customer_tags(customer)}, exc
    )


@require_POST
@console_view("customers.edit")
def add_tag(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = selectors.access_customer_for_user(request.user, customer_id)
    try:
        do_add_tag(customer=customer, name=request.POST.get("name", ""), actor=request.user)
    except ValidationFailed as exc:
        return _tags_response(request, customer, exc)
    return _tags_response(request, customer)


@require_POST
@console_view("customers.edit")
def remove_tag(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = selectors.access_customer_for_user(request.user, customer_id)
    do_remove_tag(customer=customer, name=request.POST.get("name", ""), actor=request.user)
    return _tags_response(request, customer)


@require_POST
@console_view("customers.edit")
def set_consent(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = selectors.access_customer_for_user(request.user, customer_id)
    form = ConsentForm(request.POST)
    exc = None
    if form.is_valid():
        try:
            do_set_consent(
                customer=customer,
                purpose=form.cleaned_data["purpose"],
                channel=form.cleaned_data["channel"],
                granted=form.cleaned_data["granted"],
                source=form.cleaned_data["source"] or "console",
                actor=request.user,
            )
        except ValidationFailed as e:
            exc = e
    else:
        exc = ValidationFailed(
            _("The consent is not valid."), fields={k: v[0] for k, v in form.errors.items()}
        )
    return _edit_response(
        request,
        customer,
        "customers/partials/_consent.html",
        {"consents": selectors.consent_grid(customer), "consent_channels": selectors.consent_channels()},
        exc,
    )


@require_POST
@console_view("customers.edit")
def update_attributes(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = selectors.access_customer_for_user(request.user, customer_id)
    definitions = list(CustomAttributeDefinition.objects.all())
    values = {}
    for d in definitions:
        if d.type == "boolean":
            raw = request.POST.get(f"attr_{d.key}", "")
            values[d.key] = raw if raw in ("true", "false") else None
        else:
            values[d.key] = request.POST.get(f"attr_{d.key}", "").strip() or None
    exc = None
    # Check every value first so the user sees all the mistakes at once (the service stops at one).
    errors = {}
    for d in definitions:
        try:
            coerce_attribute(d, values[d.key])
        except ValueError as e:
            errors[d.key] = _("%(label)s: %(error)s") % {"label": d.label, "error": e}
    try:
        if errors:
            raise ValidationFailed(_("Some attributes are not valid."), fields=errors)
        customer = do_update_customer(
            customer=customer, changes={"custom_attributes": values}, actor=request.user
        )
    except ValidationFailed as e:
        exc = e
    rows = selectors.custom_attribute_rows(customer)
    if exc is not None:  # show what the user typed, next to the readable error
        for row in rows:
            row["value"] = request.POST.get(f"attr_{row['definition'].key}", "")
    elif request.htmx:
        messages.success(request, _("Attributes saved."))
    return _edit_response(
        request,
        customer,
        "customers/partials/_attributes.html",
        {"attributes": rows, "saved": exc is None},
        exc,
    )


# --- Duplicates and merge ----------------------------------------------------------------------


@console_view("customers.merge")
def duplicates(request: HttpRequest) -> HttpResponse:
    after_score = request.GET.get("after_score")
    try:
        after_score = float(after_score) if after_score else None
    except ValueError:
        after_score = None
    rows, last = selectors.open_duplicates_for_user(
        request.user, after_score=after_score, after_id=_int(request.GET.get("after_id"))
    )
    return render(request, "customers/duplicates.html", {"candidates": rows, "last": last})


def _compare_context(request, a: Customer, b: Customer, candidate=None) -> dict:
    """Side by side: who survives by the stated rule (or the reviewer's swap), and which value of
    each field is kept by default."""
    stats = selectors.profile_stats([a.pk, b.pk])
    forced = _int(request.GET.get("survivor"))
    if forced in (a.pk, b.pk):
        survivor = a if forced == a.pk else b
    else:
        orders = {c.pk: stats[c.pk].get("orders", 0) for c in (a, b)}
        # More orders survives; on a tie the older profile does.
        survivor = max((a, b), key=lambda c: (orders[c.pk], -c.created_at.timestamp(), -c.pk))
    merged = b if survivor is a else a
    defaults = default_field_choices(survivor, merged)
    rows = []
    for name in MERGE_FIELDS:
        mine, theirs = getattr(survivor, name), getattr(merged, name)
        rows.append(
            {
                "name": name,
                "label": Customer._meta.get_field(name).verbose_name,
                "survivor": mine,
                "merged": theirs,
                "conflict": mine != theirs and mine not in (None, "") and theirs not in (None, ""),
                "choice": defaults.get(name, "survivor"),
            }
        )
    tags = selectors.tags_for_customers([a.pk, b.pk])
    return {
        "candidate": candidate,
        "survivor": survivor,
        "merged": merged,
        "rows": rows,
        "survivor_stats": stats[survivor.pk],
        "merged_stats": stats[merged.pk],
        "survivor_tags": tags.get(survivor.pk, []),
        "merged_tags": tags.get(merged.pk, []),
        "survivor_identities": selectors.customer_identities(survivor),
        "merged_identities": selectors.customer_identities(merged),
    }


@console_view("customers.merge")
def review_candidate(request: HttpRequest, candidate_id: int) -> HttpResponse:
    candidate = selectors.access_candidate_for_user(request.user, candidate_id)
    context = _compare_context(request, candidate.customer_a, candidate.customer_b, candidate)
    return render(request, "customers/compare.html", context)


@console_view("customers.merge")
def merge_with(request: HttpRequest, customer_id: int) -> HttpResponse:
    """Merge by hand from the 360 page: compare this customer with customer #`with`."""
    customer = selectors.access_customer_for_user(request.user, customer_id)
    other_id = _int(request.GET.get("with"))
    if other_id is None or other_id == customer.pk:
        messages.error(request, _("Enter the number of another customer to merge with."))
        return redirect("customers:detail", customer.pk)
    try:
        other = selectors.access_customer_for_user(request.user, other_id)
    except NotFound:
        messages.error(request, _("There is no customer #%(id)s.") % {"id": other_id})
        return redirect("customers:detail", customer.pk)
    if other.is_merged or customer.is_merged:
        messages.error(request, _("A customer that was merged into another one cannot be merged again."))
        return redirect("customers:detail", customer.pk)
    return render(request, "customers/compare.html", _compare_context(request, customer, other))


@require_POST
@console_view("customers.merge")
def do_merge(request: HttpRequest) -> HttpResponse:
    survivor = selectors.access_customer_for_user(request.user, _int(request.POST.get("survivor"), 0))
    merged = selectors.access_customer_for_user(request.user, _int(request.POST.get("merged"), 0))
    candidate = None
    if request.POST.get("candidate"):
        candidate = selectors.access_candidate_for_user(request.user, _int(request.POST["candidate"], 0))
    try:
        do_merge_customers(
            survivor=survivor,
            merged=merged,
            actor=request.user,
            field_choices=field_choices_from_post(request.POST),
            candidate=candidate,
        )
    except EcrmError as exc:
        flash_error(request, exc)
        return redirect(reverse("customers:duplicates"))
    messages.success(
        request,
        _("Merged %(merged)s (#%(merged_id)s) into %(survivor)s (#%(survivor_id)s).")
        % {"merged": merged, "merged_id": merged.pk, "survivor": survivor, "survivor_id": survivor.pk},
    )
    return redirect("customers:detail", survivor.pk)


@require_POST
@console_view("customers.merge")
def dismiss_candidate(request: HttpRequest, candidate_id: int) -> HttpResponse:
    candidate = selectors.access_candidate_for_user(request.user, candidate_id)
    try:
        do_dismiss_candidate(candidate=candidate, actor=request.user)
        messages.success(request, _("Marked as not a duplicate."))
    except EcrmError as exc:
        flash_error(request, exc)
    return redirect("customers:duplicates")


@require_POST
@console_view("customers.merge")
def unmerge(request: HttpRequest, merge_id: int) -> HttpResponse:
    merge = selectors.access_merge_for_user(request.user, merge_id)
    try:
        check_can_unmerge(merge)
        do_unmerge(merge=merge, actor=request.user)
    except EcrmError as exc:
        flash_error(request, exc)
        return redirect("customers:detail", merge.survivor_id)
    messages.success(
        request,
        _("Unmerged: %(merged)s (#%(merged_id)s) is a separate customer again.")
        % {"merged": Customer.objects.get(pk=merge.merged_id), "merged_id": merge.merged_id},
    )
    return redirect("customers:detail", merge.survivor_id)


# --- Custom attributes -------------------------------------------------------------------------


@console_view("customers.configure")
def attributes(request: HttpRequest) -> HttpResponse:
    form = AttributeDefinitionForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            try:
                definition = do_define_attribute(
                    key=form.cleaned_data["key"],
                    label=form.cleaned_data["label"],
                    type=form.cleaned_data["type"],
                    choices=form.choice_list(),
                    actor=request.user,
                )
                messages.success(request, _("Attribute “%(label)s” added.") % {"label": definition.label})
                return redirect("customers:attributes")
            except EcrmError as exc:
                for field, message in exc.fields.items():
                    form.add_error(field if field in form.fields else None, message)
                if not exc.fields:
                    form.add_error(None, exc.message)
    definitions = CustomAttributeDefinition.objects.all()
    return render(request, "customers/attributes.html", {"form": form, "definitions": definitions})


@require_POST
@console_view("customers.configure")
def delete_attribute(request: HttpRequest, definition_id: int) -> HttpResponse:
    definition = CustomAttributeDefinition.objects.filter(pk=definition_id).first()
    if definition is None:
        raise NotFound("No such attribute.")
    do_delete_attribute(definition=definition, actor=request.user)
    messages.success(request, _("Attribute “%(label)s” removed.") % {"label": definition.label})
    return redirect("customers:attributes")
