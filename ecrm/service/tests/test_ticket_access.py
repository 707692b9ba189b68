"""An agent sees only their teams' tickets — through the list page, search, the ticket page, the API
and the CSV export — and is refused (with nothing changed) on others' tickets."""

from __future__ import annotations

import pytest
from django.urls import reverse

from ecrm.core.models import AuditLog
from ecrm.service.models import Ticket, TicketComment
from ecrm.service.services import do_create_ticket

from . import factories as f


@pytest.fixture
def tickets(cast):
    customer = f.customer()
    return {
        "cn": do_create_ticket(actor=None, customer=customer, subject="CN parcel", team=f.team("Service CN")),
        "en": do_create_ticket(actor=None, customer=customer, subject="EN parcel", team=f.team("Service EN")),
        "none": do_create_ticket(actor=None, customer=customer, subject="Nobody's parcel"),
    }


def _csv_numbers(response) -> set[str]:
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return {line.split(",")[0] for line in text.splitlines()[1:]}


def test_list_search_and_export_show_only_visible_tickets(login, tickets):
    client = login("agent_li")
    page = client.get(reverse("service:list"), {"view": "all"})
    assert page.status_code == 200
    body = page.content.decode()
    assert tickets["cn"].reference in body and tickets["none"].reference in body
    assert tickets["en"].reference not in body
    # search by the other team's number finds nothing
    found = client.get(
        reverse("service:list"), {"view": "all", "q": tickets["en"].reference}
    ).content.decode()
    assert "EN parcel" not in found and "No tickets match." in found
    export = client.get(reverse("service:export"), {"view": "all"})
    assert _csv_numbers(export) == {tickets["cn"].reference, tickets["none"].reference}
    manager_export = login("manager").get(reverse("service:export"), {"view": "all"})
    assert _csv_numbers(manager_export) == {t.reference for t in tickets.values()}


def test_the_other_teams_ticket_page_is_not_found_and_actions_change_nothing(login, tickets):
    client = login("agent_bob")
    cn = tickets["cn"]
    assert client.get(reverse("service:detail", args=[cn.pk])).status_code == 404
    before = AuditLog.objects.count()
    r1 = client.post(reverse("service:update", args=[cn.pk]), {"status": "solved", "priority": "urgent"})
    r2 = client.post(reverse("service:comment", args=[cn.pk]), {"body": "hi", "visibility": "public"})
    r3 = client.post(reverse("service:merge", args=[cn.pk]), {"target": tickets["none"].reference})
    assert (r1.status_code, r2.status_code, r3.status_code) == (404, 404, 404)
    cn.refresh_from_db()
    assert (cn.status, cn.priority, cn.merged_into_id) == ("new", "normal", None)
    assert TicketComment.objects.count() == 0 and AuditLog.objects.count() == before


def test_api_scopes_console_users_and_lets_integration_keys_read_all(login, tickets, api_read, api):
    client = login("agent_bob")
    data = client.get("/api/v1/service/tickets").json()
    assert {t["number"] for t in data["items"]} == {tickets["en"].reference, tickets["none"].reference}
    assert client.get(f"/api/v1/service/tickets/{tickets['cn'].pk}").status_code == 404
    patched = client.patch(f"/api/v1/service/tickets/{tickets['cn'].pk}", '{"status": "closed"}',
                           content_type="application/json")  # fmt: skip
    assert patched.status_code == 404
    assert Ticket.objects.get(pk=tickets["cn"].pk).status == "new"
    assert len(api_read.get("/api/v1/service/tickets").json()["items"]) == 3
    # a read key cannot write
    r = api_read.patch(f"/api/v1/service/tickets/{tickets['cn'].pk}", {"status": "closed"})
    assert (r.status_code, r.json()["code"]) == (403, "read_only_key")
    assert Ticket.objects.get(pk=tickets["cn"].pk).status == "new"


def test_api_create_validates_field_by_field(api, cast):
    customer = f.customer()
    bad = api.post("/api/v1/service/tickets", {"customer_id": customer.pk, "subject": "", "priority": "asap"})
    assert bad.status_code == 422 and {"subject", "priority"} <= set(bad.json()["fields"])
    unknown = api.post(
        "/api/v1/service/tickets", {"customer_id": customer.pk, "subject": "x", "order_number": "NOPE"}
    )
    assert (unknown.status_code, unknown.json()["fields"]) == (422, {"order_number": "unknown"})
    ok = api.post(
        "/api/v1/service/tickets", {"customer_id": customer.pk, "subject": "Via API", "tags": ["Fragile"]}
    )
    assert ok.status_code == 201
    assert (ok.json()["source"], ok.json()["tags"], ok.json()["status"]) == ("api", ["fragile"], "new")
    assert Ticket.objects.count() == 1


@pytest.mark.parametrize("who", ["marketer", "analyst", "nobody"])
def test_roles_without_service_access_get_no_pages(login, tickets, who):
    client = login(who)
    assert client.get(reverse("service:list")).status_code == 403
    assert client.get(reverse("service:detail", args=[tickets["none"].pk])).status_code == 403
    assert (
        client.post(reverse("service:update", args=[tickets["none"].pk]), {"status": "closed"}).status_code
        == 403
    )
    assert Ticket.objects.get(pk=tickets["none"].pk).status == "new"


def test_list_and_ticket_page_query_counts_do_not_grow_with_rows(login, cast, django_assert_max_num_queries):
    customer = f.customer()
    order = f.order(customer, "SO-7")
    for i in range(60):
        t = do_create_ticket(
            actor=None, customer=customer, subject=f"t{i}", team=f.team("Service CN"), tags=["a", "b"]
        )
    for i in range(10):
        from ecrm.service.services import do_add_comment

        do_add_comment(ticket=t, actor=cast["agent_li"], body=f"c{i}", public=False)
    Ticket.objects.filter(pk=t.pk).update(order=order)
    client = login("agent_li")
    with django_assert_max_num_queries(12):
        assert client.get(reverse("service:list"), {"view": "all"}).status_code == 200
    with django_assert_max_num_queries(12):
        assert client.get("/api/v1/service/tickets", {"limit": 50}).status_code == 200
    with django_assert_max_num_queries(25):
        assert client.get(reverse("service:detail", args=[t.pk])).status_code == 200
