"""The commerce services called directly, as importers and tasks do."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from ecrm.commerce.models import Order, OrderStatusChange, Return
from ecrm.commerce.services import do_change_order_status, do_upsert_order, do_upsert_product
from ecrm.core.exceptions import PermissionDenied, ValidationFailed
from ecrm.core.models import AuditLog
from ecrm.customers.models import Customer, Identity

pytestmark = pytest.mark.django_db

PLACED = dt.datetime(2025, 5, 1, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def _order(**kw):
    args = {
        "external_id": "SO-1",
        "placed_at": PLACED,
        "total": Decimal("30.00"),
        "currency": "CNY",
        "actor": None,
        "lines": [{"sku": "A", "unit_price": Decimal("10.00"), "quantity": Decimal(3)}],
    }
    return do_upsert_order(**{**args, **kw})


def test_naive_placed_at_is_refused():
    with pytest.raises(ValidationFailed) as exc:
        _order(placed_at=dt.datetime(2025, 5, 1, 9, 30))  # noqa: DTZ001 - the point of the test
    assert exc.value.fields == {"placed_at": "must include a timezone offset"}
    assert Order.objects.count() == 0


def test_placed_at_is_stored_in_utc_and_subtotal_derived():
    result = _order()
    assert result.created is True
    order = Order.objects.get()
    assert order.placed_at == dt.datetime(2025, 5, 1, 1, 30, tzinfo=dt.UTC)
    assert order.subtotal == Decimal("30.00")
    assert list(OrderStatusChange.objects.values_list("from_status", "to_status", "changed_at")) == [
        ("", "paid", order.placed_at)
    ]


def test_resend_keeps_returns_linked_to_their_line():
    _order()
    line = Order.objects.get().lines.get()
    ret = Return.objects.create(order=line.order, order_line=line, quantity=1)
    _order(lines=[{"sku": "A", "unit_price": Decimal("9.00"), "quantity": Decimal(3)}])
    ret.refresh_from_db()
    assert ret.order_line_id == line.pk
    line.refresh_from_db()
    assert line.unit_price == Decimal("9.00")
    assert line.line_total == Decimal("27.00")


def test_customer_from_ref_fills_blanks_only():
    existing = Customer.objects.create(first_name="Real", display_name="Real", email="r@example.com")
    Identity.objects.create(customer=existing, kind="email", value="r@example.com")
    result = _order(customer_ref={"email": "R@example.com", "first_name": "Other", "user_id": "acc-9"})
    assert result.order.customer_id == existing.pk
    existing.refresh_from_db()
    assert existing.first_name == "Real"
    assert Identity.objects.filter(customer=existing, kind="external", value="acc-9").exists()


def test_customer_ref_errors_are_named():
    with pytest.raises(ValidationFailed) as exc:
        _order(customer_ref={"phone": "12"})
    assert exc.value.fields == {"customer.phone": "'12' is not a valid phone number"}
    with pytest.raises(ValidationFailed) as exc:
        _order(customer_ref={"first_name": "X"})
    assert exc.value.fields == {"customer": "needs user_id, email or phone"}
    assert Order.objects.count() == 0


def test_duplicate_line_numbers_refused():
    with pytest.raises(ValidationFailed) as exc:
        _order(
            lines=[{"sku": "A", "unit_price": 1, "line_no": 1}, {"sku": "B", "unit_price": 1, "line_no": 1}]
        )
    assert exc.value.fields == {"lines.1.line_no": "1 is used twice"}


def test_change_status_appends_history_and_audits(cast):
    order = _order().order
    do_change_order_status(order=order, status="shipped", actor=cast["manager"], note="picked up")
    do_change_order_status(order=order, status="shipped", actor=cast["manager"])  # no-op
    assert list(order.status_history.values_list("from_status", "to_status", "note")) == [
        ("", "paid", ""), ("paid", "shipped", "picked up"),
    ]  # fmt: skip
    audit = AuditLog.objects.get(action="order.status")
    assert (audit.actor_id, audit.before, audit.after) == (
        cast["manager"].pk,
        {"status": "paid"},
        {"status": "shipped"},
    )


def test_wrong_role_is_refused_and_nothing_changes(cast):
    order = _order().order
    with pytest.raises(PermissionDenied):
        do_change_order_status(order=order, status="cancelled", actor=cast["agent_li"])
    with pytest.raises(PermissionDenied):
        do_upsert_product(sku="X", name="X", actor=cast["marketer"])
    order.refresh_from_db()
    assert order.status == "paid"
    assert order.status_history.count() == 1


def test_product_money_precision_is_checked():
    with pytest.raises(ValidationFailed) as exc:
        do_upsert_product(sku="P", name="P", price=Decimal("1.234"), actor=None)
    assert exc.value.fields == {"price": "has more than two decimal places"}
