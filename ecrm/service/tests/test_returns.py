"""Returns on order lines: quantity rules, status flow, refund limits, permissions."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ecrm.commerce.models import Return
from ecrm.core.exceptions import NotFound, PermissionDenied, ValidationFailed
from ecrm.service.models import ReturnRequest, Ticket
from ecrm.service.services import do_request_return, do_set_return_status

from . import factories as f


@pytest.fixture
def setup(cast):
    customer = f.customer()
    order = f.order(customer, "SO-1", lines=((3, "50.00"),))
    return customer, order.lines.get()


def test_a_portal_request_opens_a_return_ticket_on_the_commerce_return(setup):
    customer, line = setup
    request = do_request_return(
        actor=None, customer=customer, order_line=line, quantity="2", reason="Too big"
    )
    record = Return.objects.get()
    assert (record.order_line, record.quantity, record.status, record.reason) == (
        line,
        Decimal("2"),
        "requested",
        "Too big",
    )
    assert request.return_record == record and request.source == "portal"
    assert (request.ticket.type, request.ticket.order, request.ticket.customer) == (
        "return_refund",
        line.order,
        customer,
    )


def test_quantity_is_at_most_ordered_minus_already_returned(setup, cast):
    customer, line = setup
    first = do_request_return(actor=None, customer=customer, order_line=line, quantity=2, reason="a")
    with pytest.raises(ValidationFailed) as err:
        do_request_return(actor=None, customer=customer, order_line=line, quantity=2, reason="b")
    assert err.value.fields == {"quantity": "At most 1 can still be returned."}
    for bad in ("0", "-1", "abc", "NaN"):
        with pytest.raises(ValidationFailed):
            do_request_return(actor=None, customer=customer, order_line=line, quantity=bad, reason="b")
    assert Return.objects.count() == 1 and Ticket.objects.count() == 1
    # a rejected return gives its quantity back
    do_set_return_status(return_request=first, actor=cast["manager"], status="rejected")
    do_request_return(actor=None, customer=customer, order_line=line, quantity=3, reason="all of them")
    assert Return.objects.exclude(status="rejected").get().quantity == Decimal("3")


def test_a_customer_cannot_return_someone_elses_line(setup):
    _, line = setup
    stranger = f.customer("Mallory", "m@example.com")
    with pytest.raises(NotFound):
        do_request_return(actor=None, customer=stranger, order_line=line, quantity=1, reason="x")
    assert Return.objects.count() == 0


def test_status_flow_and_refund_limit(setup, cast):
    customer, line = setup
    request = do_request_return(actor=None, customer=customer, order_line=line, quantity=1, reason="x")
    with pytest.raises(ValidationFailed):  # cannot skip to received
        do_set_return_status(return_request=request, actor=cast["agent_li"], status="received")
    do_set_return_status(return_request=request, actor=cast["agent_li"], status="approved")
    do_set_return_status(return_request=request, actor=cast["agent_li"], status="received")
    # an agent may not pay out money: refused, nothing changed
    with pytest.raises(PermissionDenied):
        do_set_return_status(
            return_request=request, actor=cast["agent_li"], status="refunded", refund_amount="50"
        )
    assert Return.objects.get().status == "received"
    with pytest.raises(ValidationFailed) as err:
        do_set_return_status(
            return_request=request, actor=cast["manager"], status="refunded", refund_amount="150.01"
        )
    assert "refund_amount" in err.value.fields
    do_set_return_status(return_request=request, actor=cast["manager"], status="refunded", refund_amount="50")
    record = Return.objects.get()
    assert (record.status, record.refund_amount) == ("refunded", Decimal("50.00"))
    with pytest.raises(ValidationFailed):  # refunded is final
        do_set_return_status(return_request=request, actor=cast["manager"], status="rejected")
    assert ReturnRequest.objects.get().status == "refunded"
