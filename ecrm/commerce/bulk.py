"""Set-based upserts of products, orders and order lines, for bulk paths such as the CSV importer.

Each function takes one chunk (a few thousand rows) of already validated values, looks up what
exists with one query per chunk, and writes with `bulk_create`/`bulk_update`, so importing a million
rows costs a few hundred queries per chunk's worth of work rather than a few per row. They run
inside the caller's transaction and record nothing in the audit log: the caller records one entry
for the whole batch (an import job), not one per row.

Rows are dicts of model field values. Only the keys present are written, so a file that has no
`channel` column leaves the channel of existing orders alone. Within one chunk, later rows for the
same key win (as a resend would).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.utils import timezone

from .models import (
    ORDER_DATA_FIELDS,
    PRODUCT_DATA_FIELDS,
    Order,
    OrderLine,
    OrderStatus,
    OrderStatusChange,
    Product,
)

BULK_BATCH = 500
PRODUCT_FIELDS = PRODUCT_DATA_FIELDS
ORDER_FIELDS = ("customer_id", *ORDER_DATA_FIELDS)
LINE_FIELDS = ("product_id", "sku", "name", "quantity", "unit_price", "line_total")
LINE_DEFAULTS = {"product_id": None, "name": "", "quantity": 1}


@dataclass
class UpsertResult:
    """Rows created and updated, and the primary key of every key written."""

    created: int = 0
    updated: int = 0
    ids: dict[Any, int] = field(default_factory=dict)


def _collapse(rows: Iterable[dict[str, Any]], key: str) -> tuple[dict[Any, dict[str, Any]], int]:
    """Merge rows with the same key (later values win); returns ({key: values}, number of rows)."""
    merged: dict[Any, dict[str, Any]] = {}
    count = 0
    for row in rows:
        count += 1
        merged.setdefault(row[key], {}).update(row)
    return merged, count


def _apply(instance: Any, values: dict[str, Any], fields: Iterable[str], changed: set[str]) -> bool:
    dirty = False
    for name in fields:
        if name in values and getattr(instance, name) != values[name]:
            setattr(instance, name, values[name])
            changed.add(name)
            dirty = True
    return dirty


def upsert_products(rows: Iterable[dict[str, Any]]) -> UpsertResult:
    """Create or update products by SKU. Each row needs `sku`; a new product needs `name`."""
    by_sku, count = _collapse(rows, "sku")
    result = UpsertResult()
    if not by_sku:
        return result
    existing = {p.sku: p for p in Product.objects.filter(sku__in=list(by_sku))}
    to_create, to_update, changed = [], [], set()
    for sku, values in by_sku.items():
        product = existing.get(sku)
        if product is None:
            to_create.append(Product(sku=sku, **{k: v for k, v in values.items() if k in PRODUCT_FIELDS}))
        elif _apply(product, values, PRODUCT_FIELDS, changed):
            to_update.append(product)
    Product.objects.bulk_create(to_create, batch_size=BULK_BATCH)
    if to_update:
        now = timezone.now()
        for product in to_update:
            product.updated_at = now
        Product.objects.bulk_update(to_update, [*sorted(changed), "updated_at"], batch_size=BULK_BATCH)
    result.created = len(to_create)
    result.updated = count - result.created
    result.ids = {sku: p.pk for sku, p in existing.items()} | {p.sku: p.pk for p in to_create}
    return result


def ensure_products(items: dict[str, dict[str, Any]]) -> dict[str, int]:
    """{sku: product id} for these SKUs, creating the unknown ones from the given values (name,
    price, currency); existing products are left unchanged."""
    if not items:
        return {}
    ids = dict(Product.objects.filter(sku__in=list(items)).values_list("sku", "pk"))
    missing = [
        Product(sku=sku, **{k: v for k, v in values.items() if k in PRODUCT_FIELDS})
        for sku, values in items.items()
        if sku not in ids
    ]
    if missing:
        # ignore_conflicts: another writer may create the same SKU meanwhile; re-read to get its id.
        Product.objects.bulk_create(missing, batch_size=BULK_BATCH, ignore_conflicts=True)
        ids.update(Product.objects.filter(sku__in=[p.sku for p in missing]).values_list("sku", "pk"))
    return ids


def upsert_orders(rows: Iterable[dict[str, Any]], *, note: str = "import") -> UpsertResult:
    """Create or update orders by `external_id`, recording a status-history step for every new
    order and every status that changed."""
    by_ext, count = _collapse(rows, "external_id")
    result = UpsertResult()
    if not by_ext:
        return result
    existing = {o.external_id: o for o in Order.objects.filter(external_id__in=list(by_ext))}
    to_create, to_update, changed, history = [], [], set(), []
    for ext, values in by_ext.items():
        order = existing.get(ext)
        if order is None:
            order = Order(external_id=ext, **{k: v for k, v in values.items() if k in ORDER_FIELDS})
            to_create.append(order)
            continue
        old_status = order.status
        if _apply(order, values, ORDER_FIELDS, changed):
            to_update.append(order)
            if order.status != old_status:
                history.append(
                    OrderStatusChange(order=order, from_status=old_status, to_status=order.status, note=note)
                )
    Order.objects.bulk_create(to_create, batch_size=BULK_BATCH)
    for order in to_create:
        history.append(
            OrderStatusChange(
                order=order,
                from_status="",
                to_status=order.status or OrderStatus.PAID,
                changed_at=order.placed_at,
                note=note,
            )
        )
    if to_update:
        now = timezone.now()
        for order in to_update:
            order.updated_at = now
        Order.objects.bulk_update(to_update, [*sorted(changed), "updated_at"], batch_size=BULK_BATCH)
    OrderStatusChange.objects.bulk_create(history, batch_size=BULK_BATCH)
    result.created = len(to_create)
    result.updated = count - result.created
    result.ids = {ext: o.pk for ext, o in existing.items()} | {o.external_id: o.pk for o in to_create}
    return result


def order_ids_by_external_id(external_ids: Iterable[str]) -> dict[str, int]:
    return dict(
        Order.objects.filter(external_id__in=list(set(external_ids))).values_list("external_id", "pk")
    )


def upsert_order_lines(rows: Iterable[dict[str, Any]]) -> UpsertResult:
    """Create or update order lines by (order_id, line_no)."""
    by_key: dict[tuple[int, int], dict[str, Any]] = {}
    count = 0
    for row in rows:
        count += 1
        by_key.setdefault((row["order_id"], row["line_no"]), {}).update(row)
    result = UpsertResult()
    if not by_key:
        return result
    order_ids = {order_id for order_id, _ in by_key}
    # Plain tuples, not model instances: building a million OrderLine objects only to compare
    # them costs more than the rest of the import.
    existing = {
        (row[1], row[2]): row
        for row in OrderLine.objects.filter(order_id__in=order_ids).values_list(
            "id", "order_id", "line_no", *LINE_FIELDS
        )
    }
    to_create, to_update, changed = [], [], set()
    for key, values in by_key.items():
        row = existing.get(key)
        if row is None:
            to_create.append((key[0], key[1], *(values.get(k, LINE_DEFAULTS.get(k)) for k in LINE_FIELDS)))
            continue
        stored = dict(zip(LINE_FIELDS, row[3:], strict=True))
        diff = {name for name in LINE_FIELDS if name in values and stored[name] != values[name]}
        if diff:
            changed |= diff
            to_update.append(OrderLine(id=row[0], order_id=key[0], line_no=key[1], **{**stored, **{
                k: v for k, v in values.items() if k in LINE_FIELDS}}))  # fmt: skip
    _insert_lines(to_create)
    if to_update:
        OrderLine.objects.bulk_update(to_update, sorted(changed), batch_size=BULK_BATCH)
    result.created = len(to_create)
    result.updated = count - result.created
    return result


def _insert_lines(rows: list[tuple]) -> None:
    """INSERT (order_id, line_no, *LINE_FIELDS) rows with one executemany: order lines are the one
    table a shop sends millions of rows for, and `bulk_create` spends most of its time building and
    preparing model instances (it halves the import rate of a million-line file). The values are
    already clean Python values (Decimal, int, str), which both SQLite and psycopg adapt."""
    if not rows:
        return
    quote = connection.ops.quote_name
    columns = ", ".join(
        quote(OrderLine._meta.get_field(name).column)
        for name in ("order", "line_no", *(f.removesuffix("_id") for f in LINE_FIELDS))
    )
    placeholders = ", ".join(["%s"] * (2 + len(LINE_FIELDS)))
    sql = f"INSERT INTO {quote(OrderLine._meta.db_table)} ({columns}) VALUES ({placeholders})"  # noqa: S608 - names from the model
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 2000):
            cursor.executemany(sql, rows[start : start + 2000])
