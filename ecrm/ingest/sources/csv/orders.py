"""Orders from a CSV, created or updated by the shop's order number. The customer is named by shop
account id, email or phone, and created when unknown."""

from __future__ import annotations

from typing import Any

from ecrm.commerce.bulk import upsert_orders
from ecrm.commerce.models import OrderStatus

from ..base import (
    ChunkResult,
    CleanRow,
    Field,
    Importer,
    RowRefused,
    parse_datetime,
    parse_decimal,
    parse_text,
)
from ..customer_resolution import ChunkResolver, set_display_name
from .customers import clean_customer_ref, customer_keys
from .products import clean_currency

STATUS_ALIASES = {
    "complete": OrderStatus.COMPLETED, "finished": OrderStatus.COMPLETED, "已完成": OrderStatus.COMPLETED,
    "canceled": OrderStatus.CANCELLED, "已取消": OrderStatus.CANCELLED, "待付款": OrderStatus.PENDING,
    "已付款": OrderStatus.PAID, "已发货": OrderStatus.SHIPPED, "已签收": OrderStatus.DELIVERED,
    "已退款": OrderStatus.REFUNDED, "processing": OrderStatus.PAID,
}  # fmt: skip

# Computed once: `OrderStatus.values` rebuilds its list on every access (a second per 20,000 rows).
ORDER_STATUSES = frozenset(OrderStatus.values)
ORDER_ID_ALIASES = ("order_number", "order_no", "external_id", "order", "order_ref", "订单号", "订单编号")


def clean_order_id(value: str) -> str:
    order_id = value.strip()
    if not order_id:
        raise RowRefused("order_id: required")
    if len(order_id) > 64:
        raise RowRefused("order_id: longer than 64 characters")
    return order_id


class OrdersImporter(Importer):
    kind = "orders"
    fields = (
        Field("order_id", "Order number", ORDER_ID_ALIASES, required=True),
        Field("customer_id", "Customer ID (shop account)", ("customer", "customer_external_id", "member_id", "user_id", "客户编号", "会员id")),
        Field("email", "Customer email", ("customer_email", "e_mail", "邮箱")),
        Field("phone", "Customer phone", ("customer_phone", "mobile", "tel", "手机", "手机号")),
        Field("customer_name", "Customer name", ("name", "buyer_name", "收货人", "姓名")),
        Field("placed_at", "Placed at", ("order_date", "date", "created_at", "ordered_at", "order_time", "purchase_date", "下单时间"), required=True),
        Field("total", "Total", ("order_total", "grand_total", "amount", "total_amount", "订单金额", "实付金额"), required=True),
        Field("currency", "Currency", ("币种",)),
        Field("status", "Status", ("order_status", "state", "订单状态")),
        Field("channel", "Channel", ("source", "sales_channel", "渠道")),
        Field("subtotal", "Subtotal", ("商品金额",)),
        Field("shipping", "Shipping", ("shipping_fee", "shipping_cost", "freight", "运费")),
        Field("discount", "Discount", ("discount_amount", "优惠")),
        Field("shipping_city", "Shipping city", ("city", "ship_city", "收货城市")),
        Field("shipping_country", "Shipping country", ("country", "ship_country")),
        Field("tracking_number", "Tracking number", ("tracking", "tracking_no", "运单号")),
    )  # fmt: skip
    one_of = (("customer_id", "email", "phone"),)

    def clean(self, values: dict[str, str]) -> dict[str, Any]:
        out: dict[str, Any] = {"external_id": clean_order_id(values.get("order_id", ""))}
        ref: dict[str, Any] = {}
        clean_customer_ref(values, ref)
        if not ref:
            raise RowRefused("no customer_id, email or phone to say whose order this is")
        out["customer_ref"] = ref
        if values.get("customer_name"):
            out["customer_name"] = parse_text(values["customer_name"], max_length=200)
        if not values.get("placed_at", "").strip():
            raise RowRefused("placed_at: required")
        out["placed_at"] = parse_datetime(values["placed_at"], label="placed_at")
        if not values.get("total", "").strip():
            raise RowRefused("total: required")
        out["total"] = parse_decimal(values["total"], label="total")
        for name in ("subtotal", "shipping", "discount"):
            if values.get(name, "").strip():
                out[name] = parse_decimal(values[name], label=name)
        if values.get("currency"):
            out["currency"] = clean_currency(values["currency"])
        if values.get("status"):
            raw = values["status"].strip().lower()
            status = STATUS_ALIASES.get(raw, raw)
            if status not in ORDER_STATUSES:
                raise RowRefused(f"status: {values['status']!r} must be one of {', '.join(OrderStatus.values)}")
            out["status"] = status
        for name, length in (("channel", 32), ("shipping_city", 100), ("tracking_number", 64)):
            if values.get(name):
                out[name] = parse_text(values[name], max_length=length)
        if values.get("shipping_country"):
            country = values["shipping_country"].strip().upper()
            if len(country) != 2 or not country.isalpha():
                raise RowRefused(f"shipping_country: {values['shipping_country']!r} must be a two-letter ISO code")
            out["shipping_country"] = country
        return out

    def write(self, rows: list[CleanRow]) -> ChunkResult:
        resolver = ChunkResolver(source=self.source)
        targets = resolver.resolve([customer_keys(r.data["customer_ref"]) for r in rows])
        for row, target in zip(rows, targets, strict=True):
            if not isinstance(target, int) and row.data.get("customer_name") and not target.display_name:
                set_display_name(target, row.data["customer_name"])
        resolver.flush()
        orders = []
        for row, target in zip(rows, targets, strict=True):
            values = {k: v for k, v in row.data.items() if k not in ("customer_ref", "customer_name")}
            values["customer_id"] = target if isinstance(target, int) else target.pk
            orders.append(values)
        upserted = upsert_orders(orders, note=self.source)
        return ChunkResult(created=upserted.created, updated=upserted.updated)
