"""The duplicate review queue, the comparison page (with the stated survivor rule), merge from the
queue or by hand, dismiss, and unmerge from the 360 page."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from django.urls import reverse

from ecrm.customers.duplicates import record_candidate
from ecrm.customers.models import CandidateStatus, Customer, CustomerMerge, CustomerStatus, DuplicateCandidate

from .factories import make_customer, make_order


@pytest.fixture
def dup(db):
    older = make_customer(first_name="伟", last_name="张", email="zhangwei@example.cn", phone="13711112222", city="Beijing")
    newer = make_customer(first_name="伟", last_name="张", email="zhang.wei@qq.com", phone="+86 136 1111 2222",
                          birthday="1988-08-08")
    make_order(newer, number="SO-D1")
    candidate = record_candidate(older.pk, newer.pk, score=0.9, reasons=["same name", "similar phone"])
    return older, newer, candidate


def test_queue_lists_open_pairs_by_score(login, dup, django_assert_max_num_queries):
    older, newer, candidate = dup
    weak = record_candidate(make_customer(first_name="A", email="a1@example.com").pk,
                            make_customer(first_name="A", email="a2@example.com").pk, score=0.5, reasons=["same name"])
    dismissed = record_candidate(make_customer(first_name="B", email="b1@example.com").pk,
                                 make_customer(first_name="B", email="b2@example.com").pk, score=0.99, reasons=["x"])
    DuplicateCandidate.objects.filter(pk=dismissed.pk).update(status=CandidateStatus.DISMISSED)
    client = login("manager")
    with django_assert_max_num_queries(4):
        body = client.get(reverse("customers:duplicates")).content.decode()
    assert re.findall(r'id="candidate-(\d+)"', body) == [str(candidate.pk), str(weak.pk)]
    assert "similar phone" in body


def test_compare_states_the_rule_and_picks_the_survivor_with_more_orders(login, dup):
    older, newer, candidate = dup
    body = login("manager").get(reverse("customers:review_candidate", args=[candidate.pk])).content.decode()
    assert "the profile with more orders survives" in body
    assert f'name="survivor" value="{newer.pk}"' in body  # one order beats none, even though it is newer
    assert f'name="merged" value="{older.pk}"' in body
    # Conflicting email: survivor's value checked by default; empty birthday on the other side is no conflict.
    assert re.search(r'name="choice_email" value="survivor" checked', body)
    assert 'name="choice_birthday"' not in body


def test_compare_without_orders_keeps_the_older_profile(login, dup):
    older, newer, candidate = dup
    newer.orders.all().delete()
    body = login("manager").get(reverse("customers:review_candidate", args=[candidate.pk])).content.decode()
    assert f'name="survivor" value="{older.pk}"' in body


def test_merge_from_queue_then_unmerge_from_360(login, dup):
    older, newer, candidate = dup
    client = login("manager")
    response = client.post(reverse("customers:merge"), {
        "survivor": newer.pk, "merged": older.pk, "candidate": candidate.pk, "choice_email": "merged"})
    assert response.status_code == 302 and response["Location"] == reverse("customers:detail", args=[newer.pk])
    survivor = Customer.objects.get(pk=newer.pk)
    assert survivor.email == "zhangwei@example.cn" and survivor.city == "Beijing"
    assert Customer.objects.get(pk=older.pk).status == CustomerStatus.MERGED
    assert DuplicateCandidate.objects.get(pk=candidate.pk).status == CandidateStatus.MERGED
    page = client.get(response["Location"]).content.decode()
    assert "Merged 张伟" in page and "Unmerge" in page
    assert client.get(reverse("customers:duplicates")).content.decode().count('id="candidate-') == 0

    merge = CustomerMerge.objects.get()
    response = client.post(reverse("customers:unmerge", args=[merge.pk]), follow=True)
    assert "is a separate customer again" in response.content.decode()
    assert Customer.objects.get(pk=older.pk).status == CustomerStatus.ACTIVE
    assert Customer.objects.get(pk=newer.pk).email == "zhang.wei@qq.com"
    assert DuplicateCandidate.objects.get(pk=candidate.pk).status == CandidateStatus.OPEN


def test_merge_by_hand_from_the_360_page(login, dup):
    older, newer, _ = dup
    client = login("admin")
    body = client.get(reverse("customers:merge_with", args=[older.pk]), {"with": newer.pk}).content.decode()
    assert 'name="candidate"' not in body and f'name="merged" value="{older.pk}"' in body
    assert client.get(reverse("customers:merge_with", args=[older.pk]), {"with": 987654}).status_code == 302


def test_dismiss_removes_the_pair_for_good(login, dup):
    older, newer, candidate = dup
    client = login("manager")
    client.post(reverse("customers:dismiss_candidate", args=[candidate.pk]))
    candidate.refresh_from_db()
    assert candidate.status == CandidateStatus.DISMISSED and candidate.resolved_by.username == "manager"
    record_candidate(older.pk, newer.pk, score=0.99, reasons=["again"])
    assert DuplicateCandidate.objects.get(pk=candidate.pk).status == CandidateStatus.DISMISSED


@pytest.mark.parametrize("username", ["agent_li", "marketer", "analyst", "nobody"])
def test_queue_and_merge_refused_for_other_roles_and_nothing_changes(login, dup, username):
    older, newer, candidate = dup
    client = login(username)
    assert client.get(reverse("customers:duplicates")).status_code == 403
    assert client.get(reverse("customers:review_candidate", args=[candidate.pk])).status_code == 403
    response = client.post(reverse("customers:merge"), {"survivor": newer.pk, "merged": older.pk})
    assert response.status_code == 403
    assert client.post(reverse("customers:dismiss_candidate", args=[candidate.pk])).status_code == 403
    assert Customer.objects.filter(status=CustomerStatus.ACTIVE).count() == 2
    assert Customer.objects.get(pk=older.pk).orders.count() == 0 and Customer.objects.get(pk=newer.pk).orders.count() == 1
    assert DuplicateCandidate.objects.get(pk=candidate.pk).status == CandidateStatus.OPEN
    assert CustomerMerge.objects.count() == 0


def test_find_duplicates_command_scans_everyone(db, capsys):
    a = make_customer(first_name="Lily", last_name="Zhou", email="lily.zhou@example.com")
    b = make_customer(first_name="Lily", last_name="Zhou", email="lilyzhou@example.com")
    make_customer(first_name="Other", last_name="Person", email="other@example.com")
    DuplicateCandidate.objects.all().delete()  # forget what the upsert hook found
    call_command("find_duplicates", block=2)
    pair = DuplicateCandidate.objects.get()
    assert (pair.customer_a_id, pair.customer_b_id) == (a.pk, b.pk)
    assert "same name" in pair.reasons and "similar email" in pair.reasons
    assert "likely duplicate pairs" in capsys.readouterr().out


def test_custom_attributes_admin_page(login, cast):
    client = login("admin")
    response = client.post(reverse("customers:attributes"), {"key": "tier", "label": "Tier", "type": "choice", "choices": "gold, silver"})
    assert response.status_code == 302
    bad = client.post(reverse("customers:attributes"), {"key": "tier", "label": "Tier again", "type": "text"})
    assert "already exists" in bad.content.decode()
    bad = client.post(reverse("customers:attributes"), {"key": "colour", "label": "Colour", "type": "choice", "choices": ""})
    assert "needs at least one choice" in bad.content.decode()
    from ecrm.customers.models import CustomAttributeDefinition

    assert list(CustomAttributeDefinition.objects.values_list("key", "type", "choices")) == [("tier", "choice", ["gold", "silver"])]
    assert login("manager").get(reverse("customers:attributes")).status_code == 403
