"""The customers API: upsert, keyset list with filters, detail, merge/unmerge and who may do what."""

from __future__ import annotations

import pytest

from ecrm.core.models import AuditLog
from ecrm.customers.models import Customer, CustomerMerge, CustomerStatus, Identity

from .factories import make_customer, make_order

BASE = "/api/v1/customers"


def test_upsert_creates_then_updates_the_same_customer(api):
    payload = {
        "identities": [{"kind": "external", "value": "shop-42"}],
        "traits": {"first_name": "小红", "last_name": "李", "email": "XiaoHong.Li@Example.cn", "phone": "139 0000 2222",
                   "country": "cn"},
        "tags": ["newsletter"],
        "consents": [{"purpose": "marketing", "channel": "email", "granted": True, "source": "signup"}],
    }
    first = api.post(BASE, payload)
    assert first.status_code == 201, first.content
    body = first.json()
    assert body["created"] is True and body["display_name"] == "李小红"
    assert body["email"] == "xiaohong.li@example.cn" and body["phone"] == "+8613900002222" and body["country"] == "CN"
    assert sorted((i["kind"], i["value"]) for i in body["identities"]) == [
        ("email", "xiaohong.li@example.cn"), ("external", "shop-42"), ("phone", "+8613900002222")]
    assert body["tags"] == ["newsletter"]
    assert [(c["purpose"], c["channel"], c["granted"], c["source"]) for c in body["consents"]] == [
        ("marketing", "email", True, "signup")]

    again = api.post(BASE, {"identities": [{"kind": "email", "value": "xiaohong.li@example.cn"}],
                            "traits": {"city": "Chengdu"}})
    assert again.status_code == 200
    assert again.json()["id"] == body["id"] and again.json()["city"] == "Chengdu"
    assert Customer.objects.count() == 1


def test_upsert_reports_bad_fields_with_paths(api):
    response = api.post(BASE, {"identities": [{"kind": "email", "value": "not-an-email"}]})
    assert response.status_code == 422
    assert response.json()["fields"] == {"identities.email": "'not-an-email' is not a valid email address"}
    response = api.post(BASE, {"identities": [{"kind": "fax", "value": "1"}]})
    assert response.status_code == 422 and "identities.0.kind" in response.json()["fields"]
    response = api.post(BASE, {"identities": [{"kind": "external", "value": "x"}], "traits": {"gender": "robot", "shoe": 1}})
    assert response.status_code == 422
    assert set(response.json()["fields"]) == {"gender", "shoe"}
    assert Customer.objects.count() == 0


def test_read_key_cannot_upsert_and_nothing_is_stored(api_read, api_anon, api_keys):
    assert api_read.post(BASE, {"identities": [{"kind": "external", "value": "x"}]}).status_code == 403
    assert api_anon.post(BASE, {"identities": [{"kind": "external", "value": "x"}]}).status_code == 401
    assert Customer.objects.count() == 0 and Identity.objects.count() == 0


def test_list_pages_by_keyset_and_filters(api_read):
    made = [make_customer(first_name=f"Zhang{i}", email=f"zhang{i}@example.cn", country="CN" if i % 2 else "US")
            for i in range(5)]
    make_order(made[0], number="SO-777")
    first = api_read.get(BASE, limit=2)
    assert first.status_code == 200
    data = first.json()
    assert [c["id"] for c in data["items"]] == [made[4].pk, made[3].pk] and data["next_after"] == made[3].pk
    rest = api_read.get(BASE, limit=2, after=data["next_after"]).json()
    assert [c["id"] for c in rest["items"]] == [made[2].pk, made[1].pk]
    last = api_read.get(BASE, limit=2, after=rest["next_after"]).json()
    assert [c["id"] for c in last["items"]] == [made[0].pk] and last["next_after"] is None
    assert [c["id"] for c in api_read.get(BASE, country="CN").json()["items"]] == [made[3].pk, made[1].pk]
    assert [c["id"] for c in api_read.get(BASE, q="SO-777").json()["items"]] == [made[0].pk]
    bad = api_read.get(BASE, stage="nope")
    assert bad.status_code == 422 and "stage" in bad.json()["fields"]


def test_detail_and_tracking_key_refused(api_keys, api_read):
    from conftest import ApiClient

    c = make_customer(first_name="Lucy", last_name="Liu", email="lucy@example.com", tags=["vip"])
    body = api_read.get(f"{BASE}/{c.pk}").json()
    assert (body["display_name"], body["tags"], body["status"], body["merged_into"]) == ("Lucy Liu", ["vip"], "active", None)
    assert api_read.get(f"{BASE}/999999").status_code == 404
    tracker = ApiClient(api_keys["track"])
    assert tracker.get(f"{BASE}/{c.pk}").status_code == 403
    assert tracker.get(BASE).status_code == 403


def test_console_user_merge_and_unmerge_through_the_api(login, cast):
    a = make_customer(first_name="Jack", last_name="Ma", email="jack@example.com")
    b = make_customer(first_name="Jack", last_name="Ma", email="jackma@example.com", city="Hangzhou")
    make_order(b, number="SO-9")
    client = login("manager")
    response = client.post(f"{BASE}/{a.pk}/merge", {"merged_id": b.pk, "field_choices": {"email": "merged"}},
                           content_type="application/json")
    assert response.status_code == 201, response.content
    merge = response.json()
    assert merge["moved"]["commerce.order.customer"] == 1 and merge["moved"]["customers.identity.customer"] == 1
    assert Customer.objects.get(pk=a.pk).email == "jackma@example.com"
    assert Customer.objects.get(pk=b.pk).status == CustomerStatus.MERGED
    response = client.post(f"{BASE}/merges/{merge['id']}/unmerge", content_type="application/json")
    assert response.status_code == 200 and response.json()["unmerged_at"]
    assert Customer.objects.get(pk=a.pk).email == "jack@example.com"
    assert Customer.objects.get(pk=b.pk).status == CustomerStatus.ACTIVE
    assert list(AuditLog.objects.filter(action__in=["customer.merge", "customer.unmerge"]).values_list("action", flat=True)
                .order_by("id")) == ["customer.merge", "customer.unmerge"]


@pytest.mark.parametrize("who", ["agent_li", "analyst", "nobody", "write_key"])
def test_merge_refused_for_others_and_nothing_changes(login, api, who):
    a = make_customer(first_name="Jack", last_name="Ma", email="jack@example.com")
    b = make_customer(first_name="Jack", last_name="Ma", email="jackma@example.com")
    before = [Customer.objects.filter(pk=c.pk).values().get() for c in (a, b)]
    if who == "write_key":
        response = api.post(f"{BASE}/{a.pk}/merge", {"merged_id": b.pk})
    else:
        response = login(who).post(f"{BASE}/{a.pk}/merge", {"merged_id": b.pk}, content_type="application/json")
    assert response.status_code == 403
    assert [Customer.objects.filter(pk=c.pk).values().get() for c in (a, b)] == before
    assert CustomerMerge.objects.count() == 0


def test_nobody_sees_nothing_through_the_api(login):
    c = make_customer(first_name="Secret", email="secret@example.com")
    client = login("nobody")
    assert client.get(BASE).status_code == 403
    response = client.get(f"{BASE}/{c.pk}")
    assert response.status_code == 403 and b"secret@example.com" not in response.content
