"""Products from a CSV, created or updated by SKU."""

from __future__ import annotations

from typing import Any

from ecrm.commerce.bulk import upsert_products

from ..base import ChunkResult, CleanRow, Field, Importer, RowRefused, parse_decimal, parse_text


def clean_currency(value: str) -> str:
    currency = value.strip().upper()
    if currency in ("RMB", "¥", "￥", "元"):
        return "CNY"
    if len(currency) != 3 or not currency.isalpha():
        raise RowRefused(f"currency: {value!r} must be a three-letter code such as CNY")
    return currency


def clean_sku(value: str, label: str = "sku") -> str:
    sku = value.strip()
    if not sku:
        raise RowRefused(f"{label}: required")
    if len(sku) > 64:
        raise RowRefused(f"{label}: longer than 64 characters")
    return sku


class ProductsImporter(Importer):
    kind = "products"
    fields = (
        Field("sku", "SKU", ("product_id", "product_sku", "item_id", "item_sku", "product_code", "商品编码", "商品编号", "货号"), required=True),
        Field("name", "Name", ("product_name", "title", "item_name", "商品名称", "名称")),
        Field("category_path", "Category (e.g. Home/Kitchen)", ("category", "categories", "product_category", "类目", "分类")),
        Field("price", "Price", ("unit_price", "list_price", "价格", "单价")),
        Field("currency", "Currency", ("币种",)),
    )  # fmt: skip

    def clean(self, values: dict[str, str]) -> dict[str, Any]:
        out: dict[str, Any] = {"sku": clean_sku(values.get("sku", ""))}
        if values.get("name"):
            out["name"] = parse_text(values["name"], max_length=255)
        if values.get("category_path"):
            parts = [p.strip() for p in values["category_path"].replace(">", "/").split("/")]
            out["category_path"] = "/".join(p for p in parts if p)[:255]
        if values.get("price"):
            out["price"] = parse_decimal(values["price"], label="price")
        if values.get("currency"):
            out["currency"] = clean_currency(values["currency"])
        return out

    def write(self, rows: list[CleanRow]) -> ChunkResult:
        # A new product needs a name; refuse those rows here, where we know whether the SKU exists.
        from ecrm.commerce.models import Product

        known = set(Product.objects.filter(sku__in=[r.data["sku"] for r in rows]).values_list("sku", flat=True))
        named = {r.data["sku"] for r in rows if r.data.get("name")}
        result = ChunkResult()
        good = []
        for row in rows:
            sku = row.data["sku"]
            if sku not in known and sku not in named:
                result.refused.append((row.row_no, f"sku: {sku!r} is a new product and needs a name"))
            else:
                good.append(row.data)
        upserted = upsert_products(good)
        result.created, result.updated = upserted.created, upserted.updated
        return result
