"""PUT/POST/GET /api/v1/orders and PUT/GET /api/v1/products through the public API."""

from __future__ import annotations

import pytest

from ecrm.commerce.models import Order, OrderLine, OrderStatusChange, Product
from ecrm.core.models import AuditLog
from ecrm.customers.models import Customer

pytestmark = pytest.mark.django_db

ORDER = {
    "status": "paid",
    "channel": "web",
    "placed_at": "2025-03-01T20:15:00+08:00",
    "total": "218.00",
    "shipping": 19.0,
    "currency": "cny",
    "shipping_city": "Shanghai",
    "customer": {"email": "Li@Example.com", "first_name": "Wei", "last_name": "Li"},
    "lines": [
        {"sku": "KN-01", "name": "Chef knife", "quantity": 1, "unit_price": 159.99},
        {"sku": "BD-02", "quantity": "2", "unit_price": "19.50"},
    ],
}


def test_put_creates_order_with_lines_customer_and_history(api):
    Product.objects.create(sku="KN-01", name="Chef knife", price="159.99")
    resp = api.put("/api/v1/orders/SO-1001", ORDER)
    assert resp.status_code == 201, resp.content
    body = resp.json()
    customer = Customer.objects.get()
    assert customer.email == "li@example.com"
    assert customer.display_name == "Wei Li"
    assert body["created"] is True
    assert body["customer_id"] == customer.pk
    assert body["currency"] == "CNY"
    assert body["placed_at"] == "2025-03-01T12:15:00+00:00"
    assert (body["total"], body["shipping"], body["subtotal"]) == ("218.00", "19.00", "198.99")
    assert [
        (ln["line_no"], ln["sku"], ln["quantity"], ln["unit_price"], ln["line_total"]) for ln in body["lines"]
    ] == [
        (1, "KN-01", "1.000", "159.99", "159.99"),
        (2, "BD-02", "2.000", "19.50", "39.00"),
    ]
    assert body["lines"][0]["product_id"] == Product.objects.get(sku="KN-01").pk
    assert body["lines"][1]["product_id"] is None
    assert [(h["from_status"], h["to_status"]) for h in body["status_history"]] == [("", "paid")]
    audit = AuditLog.objects.get(action="order.create")
    assert audit.after["external_id"] == "SO-1001"
    assert audit.after["lines"] == [
        ["1", "KN-01", "1.000", "159.99", "159.99"],
        ["2", "BD-02", "2.000", "19.50", "39.00"],
    ]


def test_resend_updates_instead_of_duplicating(api):
    api.put("/api/v1/orders/SO-1", ORDER)
    line_ids = list(OrderLine.objects.order_by("line_no").values_list("pk", flat=True))
    resend = {
        **ORDER,
        "status": "shipped",
        "status_note": "SF Express",
        "tracking_number": "SF123",
        "lines": [{"sku": "KN-01", "quantity": 1, "unit_price": "149.00"}],
    }
    resp = api.put("/api/v1/orders/SO-1", resend)
    assert resp.status_code == 200
    body = resp.json()
    assert body["created"] is False
    assert Order.objects.count() == 1
    assert Customer.objects.count() == 1
    # line 1 updated in place (returns keep pointing at it), line 2 removed
    assert list(OrderLine.objects.values_list("pk", "line_no", "unit_price")) == [(line_ids[0], 1, 149)]
    assert [(h["from_status"], h["to_status"], h["note"]) for h in body["status_history"]] == [
        ("", "paid", ""), ("paid", "shipped", "SF Express"),
    ]  # fmt: skip
    audit = AuditLog.objects.get(action="order.update")
    assert audit.before["status"] == "paid" and audit.after["status"] == "shipped"
    assert audit.after["tracking_number"] == "SF123"
    assert audit.after["lines"] == [["1", "KN-01", "1.000", "149.00", "149.00"]]

    # The very same payload again changes nothing and records nothing.
    api.put("/api/v1/orders/SO-1", resend)
    assert OrderStatusChange.objects.count() == 2
    assert AuditLog.objects.filter(action="order.update").count() == 1


def test_resend_without_lines_keeps_lines_and_customer(api):
    api.put("/api/v1/orders/SO-2", ORDER)
    customer_id = Order.objects.get().customer_id
    slim = {k: v for k, v in ORDER.items() if k not in ("lines", "customer")}
    body = api.put("/api/v1/orders/SO-2", {**slim, "status": "delivered"}).json()
    assert len(body["lines"]) == 2
    assert body["customer_id"] == customer_id


def test_post_upserts_by_external_id_in_body(api):
    assert api.post("/api/v1/orders", {**ORDER, "external_id": "SO-3"}).status_code == 201
    assert api.post("/api/v1/orders", {**ORDER, "external_id": "SO-3", "total": "1.00"}).status_code == 200
    assert Order.objects.get().total == 1
    resp = api.post("/api/v1/orders", ORDER)
    assert resp.status_code == 422
    assert resp.json()["fields"] == {"external_id": "This field is required."}


def test_order_validation_errors_have_field_paths_and_store_nothing(api):
    bad = {
        **ORDER,
        "placed_at": "2025-03-01T20:15:00",
        "currency": "yuan",
        "total": "10.999",
        "lines": [{"sku": "A", "unit_price": -1, "quantity": 0}],
    }
    resp = api.put("/api/v1/orders/SO-4", bad)
    assert resp.status_code == 422
    fields = resp.json()["fields"]
    assert fields["placed_at"] == "Input should have timezone info"
    assert (
        fields["currency"] == "Value error, must be a three-letter ISO 4217 currency code, such as CNY or USD"
    )
    assert fields["total"] == "Decimal input should have no more than 2 decimal places"
    assert fields["lines.0.unit_price"] == "Input should be greater than or equal to 0"
    assert fields["lines.0.quantity"] == "Input should be greater than 0"
    assert (Order.objects.count(), Customer.objects.count()) == (0, 0)


def test_body_external_id_must_match_url(api):
    resp = api.put("/api/v1/orders/SO-5", {**ORDER, "external_id": "SO-6"})
    assert resp.status_code == 422
    assert resp.json()["fields"] == {"external_id": "must match the URL"}


def test_read_key_may_read_but_not_write(api, api_read):
    api.put("/api/v1/orders/SO-7", ORDER)
    resp = api_read.get("/api/v1/orders/SO-7")
    assert resp.status_code == 200
    assert resp.json()["total"] == "218.00"
    refused = api_read.put("/api/v1/orders/SO-7", {**ORDER, "total": "1.00"})
    assert refused.status_code == 403
    assert refused.json()["code"] == "read_only_key"
    assert Order.objects.get().total == 218
    assert api_read.get("/api/v1/orders/NOPE").status_code == 404


def test_console_roles(login, api):
    api.put("/api/v1/orders/SO-8", ORDER)
    agent = login("agent_li")
    # agents may edit customers but not commerce data
    resp = agent.put("/api/v1/orders/SO-8", {**ORDER, "total": "1.00"}, content_type="application/json")
    assert resp.status_code == 403
    assert Order.objects.get().total == 218
    assert agent.get("/api/v1/orders/SO-8").status_code == 200


def test_nobody_cannot_read_orders(login, api):
    api.put("/api/v1/orders/SO-9", ORDER)
    assert login("nobody").get("/api/v1/orders/SO-9").status_code == 403


def test_get_order_query_count_does_not_grow_with_lines(api, django_assert_max_num_queries):
    many = {**ORDER, "lines": [{"sku": f"S{i}", "unit_price": "1.00"} for i in range(40)], "total": "40.00"}
    api.put("/api/v1/orders/SO-10", many)
    with django_assert_max_num_queries(5):
        body = api.get("/api/v1/orders/SO-10").json()
    assert len(body["lines"]) == 40


def test_product_upsert_by_sku(api):
    resp = api.put(
        "/api/v1/products/KN-01",
        {"name": "Chef knife", "category_path": "Home / Kitchen/Knives", "price": "159.90"},
    )
    assert resp.status_code == 201
    assert resp.json() == {
        "sku": "KN-01", "name": "Chef knife", "category_path": "Home/Kitchen/Knives",
        "price": "159.90", "currency": "CNY", "created": True,
    }  # fmt: skip
    resp = api.put("/api/v1/products/KN-01", {"name": "Chef knife 21cm", "price": 149, "currency": "usd"})
    assert resp.status_code == 200
    product = Product.objects.get()
    assert (product.name, str(product.price), product.currency, product.category_path) == (
        "Chef knife 21cm", "149.00", "USD", "",
    )  # fmt: skip
    update = AuditLog.objects.get(action="product.update")
    assert update.before == {
        "name": "Chef knife",
        "price": "159.90",
        "currency": "CNY",
        "category_path": "Home/Kitchen/Knives",
    }
    assert api.get("/api/v1/products/KN-01").json()["name"] == "Chef knife 21cm"
    assert api.put("/api/v1/products/KN-01", {"name": ""}).status_code == 422
