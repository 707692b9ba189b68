"""Returns through the API and the console list; typed custom ticket fields."""

from __future__ import annotations

import pytest
from django.urls import reverse

from ecrm.commerce.models import Return
from ecrm.core.exceptions import PermissionDenied, ValidationFailed
from ecrm.service.models import ReturnRequest, Ticket
from ecrm.service.services import (
    do_create_ticket,
    do_define_ticket_field,
    do_request_return,
    do_update_ticket,
)

from . import factories as f


def test_api_return_request_with_field_errors_then_success(api, cast):
    customer = f.customer()
    line = f.order(customer, "SO-5", lines=((1, "20.00"),)).lines.get()
    too_many = api.post("/api/v1/service/returns", {"order_line_id": line.pk, "quantity": "2", "reason": "x"})
    assert too_many.status_code == 422 and too_many.json()["fields"] == {
        "quantity": "At most 1 can still be returned."
    }
    missing = api.post("/api/v1/service/returns", {"order_line_id": 999999, "quantity": "1", "reason": "x"})
    assert (missing.status_code, missing.json()["fields"]) == (422, {"order_line_id": "unknown"})
    ok = api.post("/api/v1/service/returns", {"order_line_id": line.pk, "quantity": "1", "reason": "Damaged"})
    assert ok.status_code == 201 and ok.json()["status"] == "requested"
    assert Return.objects.count() == 1 and Ticket.objects.get().type == "return_refund"
    # an integration key may not decide on returns: that needs a person
    r = api.post(f"/api/v1/service/returns/{ok.json()['id']}/status", {"status": "approved"})
    assert (r.status_code, r.json()["code"]) == (403, "person_required")
    assert Return.objects.get().status == "requested"


def test_returns_list_page_and_actions_respect_team_scope(login, cast):
    customer = f.customer()
    line = f.order(customer).lines.get()
    ticket = do_create_ticket(actor=None, customer=customer, subject="r", team=f.team("Service EN"))
    request = do_request_return(
        actor=None, customer=customer, order_line=line, quantity=1, reason="x", ticket=ticket
    )
    assert "SO-1" not in login("agent_li").get(reverse("service:returns")).content.decode()
    r = login("agent_li").post(reverse("service:return_status", args=[request.pk]), {"status": "approved"})
    assert r.status_code == 404 and ReturnRequest.objects.get().status == "requested"
    client = login("agent_bob")
    assert "SO-1" in client.get(reverse("service:returns")).content.decode()
    client.post(reverse("service:return_status", args=[request.pk]), {"status": "approved"})
    assert ReturnRequest.objects.get().status == "approved"


def test_custom_fields_are_typed_and_defined_by_managers(cast):
    with pytest.raises(PermissionDenied):
        do_define_ticket_field(
            actor=cast["agent_li"], key="courier", label="Courier", type="choice", choices=["SF"]
        )
    do_define_ticket_field(
        actor=cast["manager"], key="courier", label="Courier", type="choice", choices=["SF", "JD"]
    )
    do_define_ticket_field(actor=cast["manager"], key="parcels", label="Parcels", type="number")
    ticket = do_create_ticket(actor=None, customer=f.customer(), subject="x", custom_fields={"courier": "SF"})
    with pytest.raises(ValidationFailed) as err:
        do_update_ticket(ticket=ticket, actor=cast["manager"],
                         changes={"custom_fields": {"courier": "UPS", "parcels": "two", "colour": "red"}})  # fmt: skip
    assert set(err.value.fields) == {"custom_fields.courier", "custom_fields.parcels", "custom_fields.colour"}
    do_update_ticket(ticket=ticket, actor=cast["manager"], changes={"custom_fields": {"parcels": "2"}})
    assert Ticket.objects.get().custom_fields == {"courier": "SF", "parcels": 2}


def test_a_custom_field_can_be_cleared(cast):
    do_define_ticket_field(actor=cast["manager"], key="parcels", label="Parcels", type="number")
    ticket = do_create_ticket(actor=None, customer=f.customer(), subject="x", custom_fields={"parcels": 3})
    do_update_ticket(ticket=ticket, actor=cast["manager"], changes={"custom_fields": {"parcels": ""}})
    assert Ticket.objects.get().custom_fields == {}
