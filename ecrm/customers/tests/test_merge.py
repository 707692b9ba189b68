"""Merge and unmerge through the service: everything moves, and unmerge restores both customers
exactly (fields, identities, tags, consents, notes, orders, events)."""

from __future__ import annotations

import datetime as dt

import pytest

from ecrm.core.exceptions import Conflict, PermissionDenied
from ecrm.customers.duplicates import record_candidate
from ecrm.customers.merge import do_merge_customers, do_unmerge
from ecrm.customers.models import (
    CandidateStatus,
    Consent,
    Customer,
    CustomerMerge,
    CustomerStatus,
    CustomerTag,
    DuplicateCandidate,
    Identity,
    Note,
)
from ecrm.customers.services import do_add_tag, do_set_consent

from .factories import Event, Order, make_consent, make_customer, make_event, make_note, make_order


def full_state(customer_id: int) -> dict:
    """Everything about one customer, as comparable plain data."""
    customer = Customer.objects.get(pk=customer_id)
    return {
        "customer": {f.attname: getattr(customer, f.attname) for f in Customer._meta.concrete_fields},
        "identities": sorted(Identity.objects.filter(customer_id=customer_id).values_list("pk", "kind", "value", "source", "created_at")),
        "tags": sorted(CustomerTag.objects.filter(customer_id=customer_id).values_list("pk", "tag_id", "created_at")),
        "consents": sorted(Consent.objects.filter(customer_id=customer_id).values_list("pk", "purpose", "channel", "granted", "source", "recorded_at")),
        "notes": sorted(Note.objects.filter(customer_id=customer_id).values_list("pk", "body", "created_at")),
        "orders": sorted(Order.objects.filter(customer_id=customer_id).values_list("pk", "external_id", "total")),
        "events": sorted(Event.objects.filter(customer_id=customer_id).values_list("pk", "event_id")),
    }


@pytest.fixture
def pair(cast):
    manager = cast["manager"]
    older = make_customer(first_name="小明", last_name="王", email="xiaoming.wang@example.cn", phone="13812345678",
                          city="Shanghai", country="CN", lifecycle_stage="repeat", tags=["vip", "newsletter"])
    newer = make_customer(first_name="小明", last_name="王", email="wxm1990@qq.com", phone="+86 139 8765 4321",
                          birthday="1990-04-01", tags=["vip", "wholesale"])
    make_order(older, number="SO-1001", total="299.00")
    make_order(newer, number="SO-2001", total="58.50", days_ago=3)
    make_order(newer, number="SO-2002", total="120.00", days_ago=10)
    make_event(older, type="page_view", name="/")
    make_event(newer, type="product_view", name="Tea set")
    make_note(older, "Prefers delivery after 6pm.", actor=manager)
    make_note(newer, "Asked about wholesale prices.", actor=manager)
    make_consent(older, "marketing", "email", True, source="checkout")
    make_consent(newer, "marketing", "email", False, source="unsubscribe-link")  # newer answer wins
    make_consent(newer, "marketing", "sms", True, source="form")
    candidate = record_candidate(older.pk, newer.pk, score=0.85, reasons=["same name"])
    return older, newer, candidate


def test_merge_moves_everything_and_unmerge_restores_both_exactly(pair, cast):
    older, newer, candidate = pair
    before_older, before_newer = full_state(older.pk), full_state(newer.pk)

    merge = do_merge_customers(survivor=older, merged=newer, actor=cast["manager"], candidate=candidate,
                               field_choices={"email": "merged"})

    after_older, after_newer = full_state(older.pk), full_state(newer.pk)
    assert after_newer["orders"] == [] and after_newer["events"] == [] and after_newer["notes"] == []
    assert after_newer["identities"] == [] and after_newer["tags"] == [] and after_newer["consents"] == []
    assert [o[1] for o in after_older["orders"]] == ["SO-1001", "SO-2001", "SO-2002"]
    assert len(after_older["events"]) == 2 and len(after_older["notes"]) == 2
    assert {i[2] for i in after_older["identities"]} == {
        "xiaoming.wang@example.cn", "+8613812345678", "wxm1990@qq.com", "+8613987654321"}
    survivor = Customer.objects.get(pk=older.pk)
    assert sorted(survivor.tags.values_list("name", flat=True)) == ["newsletter", "vip", "wholesale"]
    assert survivor.email == "wxm1990@qq.com"  # the reviewer's choice
    assert survivor.phone == "+8613812345678"  # default: survivor's non-empty value
    assert survivor.birthday == dt.date(1990, 4, 1)  # non-empty beats empty
    consents = {(c.purpose, c.channel): (c.granted, c.source) for c in Consent.objects.filter(customer=survivor)}
    assert consents == {("marketing", "email"): (False, "unsubscribe-link"), ("marketing", "sms"): (True, "form")}
    gone = Customer.objects.get(pk=newer.pk)
    assert gone.status == CustomerStatus.MERGED and gone.merged_into_id == older.pk
    assert DuplicateCandidate.objects.get(pk=candidate.pk).status == CandidateStatus.MERGED
    assert set(merge.moved) >= {"commerce.order.customer", "ingest.event.customer", "customers.note.customer",
                                 "customers.identity.customer", "customers.customertag.customer", "customers.consent.customer"}

    do_unmerge(merge=merge, actor=cast["manager"])

    assert full_state(older.pk) == before_older
    assert full_state(newer.pk) == before_newer
    assert DuplicateCandidate.objects.get(pk=candidate.pk).status == CandidateStatus.OPEN
    merge.refresh_from_db()
    assert merge.unmerged_at is not None and merge.unmerged_by == cast["manager"]


def test_rows_that_arrive_after_the_merge_stay_with_the_survivor(pair, cast):
    older, newer, _ = pair
    merge = do_merge_customers(survivor=older, merged=newer, actor=cast["manager"])
    late_order = make_order(older, number="SO-3001", days_ago=0)
    late_note = make_note(older, "Called after the merge.", actor=cast["manager"])
    do_add_tag(customer=older, name="called", actor=cast["manager"])

    do_unmerge(merge=merge, actor=cast["manager"])

    assert Order.objects.get(pk=late_order.pk).customer_id == older.pk
    assert Note.objects.get(pk=late_note.pk).customer_id == older.pk
    assert "called" in set(Customer.objects.get(pk=older.pk).tags.values_list("name", flat=True))
    assert sorted(Order.objects.filter(customer=newer).values_list("external_id", flat=True)) == ["SO-2001", "SO-2002"]


def test_unmerge_keeps_later_edits_of_the_survivor(pair, cast):
    older, newer, _ = pair
    merge = do_merge_customers(survivor=older, merged=newer, actor=cast["manager"])
    Customer.objects.filter(pk=older.pk).update(city="Hangzhou")
    do_set_consent(customer=older, purpose="marketing", channel="email", granted=True, source="phone call",
                   actor=cast["manager"])
    do_unmerge(merge=merge, actor=cast["manager"])
    survivor = Customer.objects.get(pk=older.pk)
    assert survivor.city == "Hangzhou"
    assert survivor.birthday is None  # the merge's contribution is undone
    email = Consent.objects.get(customer=survivor, purpose="marketing", channel="email")
    assert (email.granted, email.source) == (True, "phone call")


def test_unmerge_of_an_earlier_merge_is_refused_while_a_later_one_stands(pair, cast):
    older, newer, _ = pair
    third = make_customer(first_name="Xiaoming", last_name="Wang", email="xm.wang@gmail.com")
    first = do_merge_customers(survivor=older, merged=newer, actor=cast["manager"])
    second = do_merge_customers(survivor=older, merged=third, actor=cast["manager"])
    with pytest.raises(Conflict) as exc:
        do_unmerge(merge=first, actor=cast["manager"])
    assert exc.value.code == "later_merge_exists"
    assert f"merge #{second.pk}" in exc.value.message
    assert CustomerMerge.objects.get(pk=first.pk).unmerged_at is None
    assert Customer.objects.get(pk=newer.pk).status == CustomerStatus.MERGED
    do_unmerge(merge=second, actor=cast["manager"])
    do_unmerge(merge=first, actor=cast["manager"])
    assert Customer.objects.filter(pk__in=[older.pk, newer.pk, third.pk], status=CustomerStatus.ACTIVE).count() == 3
    with pytest.raises(Conflict):
        do_unmerge(merge=first, actor=cast["manager"])


def test_a_merged_customer_cannot_be_merged_again(pair, cast):
    older, newer, _ = pair
    do_merge_customers(survivor=older, merged=newer, actor=cast["manager"])
    with pytest.raises(Conflict):
        do_merge_customers(survivor=newer, merged=older, actor=cast["manager"])


@pytest.mark.parametrize("username", ["agent_li", "marketer", "analyst", "nobody"])
def test_only_merge_capable_roles_may_merge_and_nothing_changes(pair, cast, username):
    older, newer, _ = pair
    before = (full_state(older.pk), full_state(newer.pk))
    with pytest.raises(PermissionDenied):
        do_merge_customers(survivor=older, merged=newer, actor=cast[username])
    assert (full_state(older.pk), full_state(newer.pk)) == before
    assert CustomerMerge.objects.count() == 0


def test_api_keys_cannot_merge(pair):
    older, newer, _ = pair
    with pytest.raises(PermissionDenied):
        do_merge_customers(survivor=older, merged=newer, actor=None)
    assert Customer.objects.get(pk=newer.pk).status == CustomerStatus.ACTIVE
