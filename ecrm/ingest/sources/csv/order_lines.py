"""Order lines from a CSV. A line names its order by order number (the order must already be
stored, by an earlier orders import or an earlier chunk of this job) and its product by SKU (an
unknown SKU becomes a new product with the line's name and price).

Without a `line_no` column a row's line number is its position among that order's rows in the
file, so importing the same file again updates the lines instead of adding them twice.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ecrm.commerce.bulk import ensure_products, order_ids_by_external_id, upsert_order_lines

from ..base import ChunkResult, CleanRow, Field, Importer, RowRefused, parse_decimal, parse_text
from .orders import ORDER_ID_ALIASES, clean_order_id
from .products import clean_currency, clean_sku

CENT = Decimal("0.01")


class OrderLinesImporter(Importer):
    kind = "order_lines"
    fields = (
        Field("order_id", "Order number", ORDER_ID_ALIASES, required=True),
        Field("line_no", "Line number", ("line", "line_number", "position", "行号")),
        Field("sku", "SKU", ("product_id", "product_sku", "item_sku", "item_id", "product_code", "商品编码", "货号"), required=True),
        Field("name", "Product name", ("product_name", "item_name", "title", "商品名称")),
        Field("quantity", "Quantity", ("qty", "count", "units", "数量")),
        Field("unit_price", "Unit price", ("price", "item_price", "单价")),
        Field("line_total", "Line total", ("total", "amount", "subtotal", "line_amount", "金额", "小计")),
        Field("currency", "Currency (for new products)", ("币种",)),
    )  # fmt: skip

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # {order id: rows of that order seen so far}: one small int pair per order in the file.
        self.line_counters: dict[int, int] = {}
        self._counted: list[int] = []

    def forget_last_write(self) -> None:
        for order_id in self._counted:
            self.line_counters[order_id] -= 1
        self._counted = []

    def clean(self, values: dict[str, str]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "order_external_id": clean_order_id(values.get("order_id", "")),
            "sku": clean_sku(values.get("sku", "")),
        }
        if values.get("line_no", "").strip():
            try:
                line_no = int(values["line_no"].strip())
            except ValueError:
                raise RowRefused(f"line_no: {values['line_no']!r} is not a whole number") from None
            if not 1 <= line_no <= 100_000:
                raise RowRefused(f"line_no: {line_no} must be between 1 and 100000")
            out["line_no"] = line_no
        if values.get("name"):
            out["name"] = parse_text(values["name"], max_length=255)
        quantity = Decimal(1)
        if values.get("quantity", "").strip():
            quantity = parse_decimal(values["quantity"], label="quantity", places=3)
            if quantity == 0:
                raise RowRefused("quantity: must be more than 0")
        out["quantity"] = quantity
        unit_price = line_total = None
        if values.get("unit_price", "").strip():
            unit_price = parse_decimal(values["unit_price"], label="unit_price")
        if values.get("line_total", "").strip():
            line_total = parse_decimal(values["line_total"], label="line_total")
        if unit_price is None and line_total is None:
            raise RowRefused("unit_price: required (or a line_total)")
        if unit_price is None:
            unit_price = (line_total / quantity).quantize(CENT)
        if line_total is None:
            line_total = (unit_price * quantity).quantize(CENT)
        out["unit_price"], out["line_total"] = unit_price, line_total
        if values.get("currency"):
            out["currency"] = clean_currency(values["currency"])
        return out

    def write(self, rows: list[CleanRow]) -> ChunkResult:
        result = ChunkResult()
        orders = order_ids_by_external_id(r.data["order_external_id"] for r in rows)
        kept: list[CleanRow] = []
        for row in rows:
            if row.data["order_external_id"] in orders:
                kept.append(row)
            else:
                result.refused.append(
                    (row.row_no, f"order_id: order {row.data['order_external_id']!r} not found (import the orders first)")
                )
        new_products: dict[str, dict[str, Any]] = {}
        for row in kept:
            new_products.setdefault(
                row.data["sku"],
                {"name": row.data.get("name") or row.data["sku"], "price": row.data["unit_price"],
                 **({"currency": row.data["currency"]} if "currency" in row.data else {})},
            )  # fmt: skip
        products = ensure_products(new_products)
        lines = []
        self._counted = []
        for row in kept:
            order_id = orders[row.data["order_external_id"]]
            counter = self.line_counters.get(order_id, 0) + 1
            self.line_counters[order_id] = counter
            self._counted.append(order_id)
            lines.append(
                {
                    "order_id": order_id,
                    "line_no": row.data.get("line_no", counter),
                    "product_id": products.get(row.data["sku"]),
                    "sku": row.data["sku"],
                    "name": row.data.get("name", ""),
                    "quantity": row.data["quantity"],
                    "unit_price": row.data["unit_price"],
                    "line_total": row.data["line_total"],
                }
            )
        upserted = upsert_order_lines(lines)
        result.created, result.updated = upserted.created, upserted.updated
        return result
