"""The Customer 360 page: profile, key figures, recent orders, the unified timeline with paging,
and the in-place edits (notes, tags, consent, custom attributes) with their permissions."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from ecrm.core.models import AuditLog
from ecrm.customers.attributes import do_define_attribute
from ecrm.customers.models import Consent, Customer, CustomerTag, Note

from .factories import make_consent, make_customer, make_event, make_note, make_order


@pytest.fixture
def mei(cast):
    mei = make_customer(first_name="美玲", last_name="陈", email="meiling.chen@example.cn", phone="13900001111",
                        city="Hangzhou", country="CN", lifecycle_stage="repeat", tags=["vip"])
    make_order(mei, number="SO-5001", total="100.00", days_ago=40)
    make_order(mei, number="SO-5002", total="250.00", days_ago=10, status="delivered")
    make_order(mei, number="SO-5003", total="999.00", days_ago=5, status="cancelled")
    make_event(mei, type="product_view", name="Longjing tea 250g", days_ago=6)
    make_event(mei, type="add_to_cart", name="Longjing tea 250g", days_ago=5.9)
    make_note(mei, "Asked for gift wrapping.", actor=cast["agent_li"])
    make_consent(mei, "marketing", "email", True, source="checkout")
    return mei


def url(c, name="customers:detail"):
    return reverse(name, args=[c.pk])


def test_360_shows_profile_figures_orders_and_one_timeline(login, mei, django_assert_max_num_queries):
    client = login("agent_li")
    # 16 for the profile, orders, scores and timeline; +3 for the service desk's panels and sources
    # (open tickets, survey results, tickets and conversation messages on the timeline), each one
    # query whatever the customer has: a constant, not N+1
    with django_assert_max_num_queries(19):
        response = client.get(url(mei))
    assert response.status_code == 200
    body = response.content.decode()
    assert "陈美玲" in body and "meiling.chen@example.cn" in body and "+8613900001111" in body
    figures = dict(re.findall(r'figure-value">([^<]*)(?:<small>[^<]*</small>)?</span><span class="figure-label">([^<(]*)', body))
    assert {v.strip(): k.strip() for k, v in figures.items()} == {
        "Orders": "3",
        "Revenue": "350.00",  # the cancelled order does not count
        "Average order value": "175.00",
        "First order": timezone.localtime(timezone.now() - dt.timedelta(days=40)).date().isoformat(),
        "Last order": timezone.localtime(timezone.now() - dt.timedelta(days=5)).date().isoformat(),
        "Days since last order": "5",
    }
    # One timeline, newest first: cancelled order (5d), cart (5.9d), view (6d), order (10d), order (40d); the note is newest.
    keys = re.findall(r'data-key="([a-z]+):', body)
    assert keys == ["note", "order", "event", "event", "order", "order"]
    for number in ("SO-5001", "SO-5002", "SO-5003"):
        assert number in body


def test_timeline_load_more_pages_without_gaps_or_repeats(login, cast):
    c = make_customer(first_name="Tim", last_name="Line", email="tim@example.com")
    for i in range(40):
        make_event(c, type="page_view", name=f"/p/{i}", days_ago=i / 10)
    for i in range(15):
        make_order(c, number=f"TL-{i:03d}", days_ago=i / 7)
    client = login("manager")
    body = client.get(url(c)).content.decode()
    seen = re.findall(r'data-key="([^"]+)"', body)
    assert len(seen) == 30
    while (m := re.search(r'hx-get="([^"]+/timeline/\?cursor=[^"]+)"', body)):
        response = client.get(m.group(1).replace("&amp;", "&"), HTTP_HX_REQUEST="true")
        body = response.content.decode()
        seen += re.findall(r'data-key="([^"]+)"', body)
    assert len(seen) == 55 and len(set(seen)) == 55


def test_add_note_in_place_appears_as_timeline_entry(login, mei):
    client = login("agent_bob")
    response = client.post(url(mei, "customers:add_note"), {"body": "Called: parcel arrived damaged."}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    body = response.content.decode()
    assert body.strip().startswith("<li") and "Called: parcel arrived damaged." in body and 'class="entry entry-note new"' in body
    note = Note.objects.get(body="Called: parcel arrived damaged.")
    assert note.customer_id == mei.pk and note.author.username == "agent_bob"
    assert AuditLog.objects.filter(action="note.create", object_id=str(note.pk)).count() == 1


def test_empty_note_is_refused_readably(login, mei):
    response = login("manager").post(url(mei, "customers:add_note"), {"body": "  "}, HTTP_HX_REQUEST="true")
    assert response["HX-Retarget"] == "#note-error"
    assert "A note cannot be empty." in response.content.decode()
    assert Note.objects.filter(customer=mei).count() == 1


@pytest.mark.parametrize("username", ["marketer", "analyst"])
def test_read_only_roles_cannot_add_notes_or_tags_and_nothing_changes(login, mei, username):
    client = login(username)
    page = client.get(url(mei)).content.decode()
    assert "Add note" not in page and 'name="name"' not in page
    assert client.post(url(mei, "customers:add_note"), {"body": "sneaky"}).status_code == 403
    assert client.post(url(mei, "customers:add_tag"), {"name": "sneaky"}).status_code == 403
    assert client.post(url(mei, "customers:remove_tag"), {"name": "vip"}).status_code == 403
    assert client.post(url(mei, "customers:set_consent"), {"purpose": "marketing", "channel": "email", "granted": "0"}).status_code == 403
    assert Note.objects.filter(customer=mei).count() == 1
    assert list(CustomerTag.objects.filter(customer=mei).values_list("tag__name", flat=True)) == ["vip"]
    assert Consent.objects.get(customer=mei).granted is True


def test_nobody_cannot_see_a_customer(login, mei):
    response = login("nobody").get(url(mei))
    assert response.status_code == 403
    assert "陈美玲" not in response.content.decode()


def test_tags_add_and_remove_in_place(login, mei):
    client = login("agent_li")
    response = client.post(url(mei, "customers:add_tag"), {"name": "  gift   buyer "}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert re.findall(r'<span class="tag">([^<]+)<form', response.content.decode()) == ["gift buyer", "vip"]
    response = client.post(url(mei, "customers:remove_tag"), {"name": "vip"}, HTTP_HX_REQUEST="true")
    assert re.findall(r'<span class="tag">([^<]+)<form', response.content.decode()) == ["gift buyer"]
    assert list(Customer.objects.get(pk=mei.pk).tags.values_list("name", flat=True)) == ["gift buyer"]


def test_consent_edit_records_source_and_time(login, mei):
    response = login("agent_li").post(
        url(mei, "customers:set_consent"), {"purpose": "marketing", "channel": "sms", "granted": "1", "source": "console"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    consent = Consent.objects.get(customer=mei, purpose="marketing", channel="sms")
    assert consent.granted is True and consent.source == "console"
    assert 'data-consent="marketing-sms"' in response.content.decode() and "console<br>" in response.content.decode()


def test_custom_attributes_are_typed_with_readable_errors(login, mei, cast):
    do_define_attribute(key="shoe_size", label="Shoe size", type="number", actor=cast["admin"])
    do_define_attribute(key="member_since", label="Member since", type="date", actor=cast["admin"])
    do_define_attribute(key="tier", label="Tier", type="choice", choices=["gold", "silver"], actor=cast["admin"])
    client = login("agent_li")
    target = url(mei, "customers:update_attributes")
    bad = client.post(target, {"attr_shoe_size": "forty", "attr_member_since": "2021-02-30", "attr_tier": "gold"},
                      HTTP_HX_REQUEST="true").content.decode()
    assert "Shoe size: &#x27;shoe_size&#x27; must be a number" in bad
    assert "Member since: &#x27;member_since&#x27; must be a date" in bad
    assert "Tier:" not in bad
    assert 'value="forty"' in bad  # what the user typed stays in the field
    assert Customer.objects.get(pk=mei.pk).custom_attributes == {}
    ok = client.post(target, {"attr_shoe_size": "38.5", "attr_member_since": "2021-02-28", "attr_tier": "silver"},
                     HTTP_HX_REQUEST="true")
    assert "Saved." in ok.content.decode()
    assert Customer.objects.get(pk=mei.pk).custom_attributes == {
        "shoe_size": 38.5, "member_since": "2021-02-28", "tier": "silver"}


def test_merged_customer_page_links_to_survivor(login, cast, mei):
    from ecrm.customers.merge import do_merge_customers

    other = make_customer(first_name="美玲", last_name="陈", email="ml.chen@qq.com")
    do_merge_customers(survivor=mei, merged=other, actor=cast["manager"])
    body = login("agent_li").get(url(other)).content.decode()
    assert "merge-banner" in body and f'href="/customers/{mei.pk}/"' in body
