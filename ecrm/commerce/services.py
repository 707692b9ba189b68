"""Writes on products and orders, one object at a time (the API's path; the CSV importer's set-based
path is `bulk.py`). Upserts are keyed by the shop's own ids (SKU, order number) so a shop can resend
anything safely: a resend updates in place, never duplicates. Every change is audited.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from ecrm.core import events
from ecrm.core.audit import record_audit, snapshot
from ecrm.core.exceptions import ValidationFailed
from ecrm.core.models import ApiKey, User
from ecrm.core.permissions import check_perm
from ecrm.customers.models import Customer, IdentityKind
from ecrm.customers.services import do_upsert_customer

from .models import (
    ORDER_DATA_FIELDS,
    PRODUCT_DATA_FIELDS,
    Order,
    OrderLine,
    OrderStatus,
    OrderStatusChange,
    Product,
)

Actor = User | ApiKey | None
CENT = Decimal("0.01")

PRODUCT_FIELDS = list(PRODUCT_DATA_FIELDS)
ORDER_FIELDS = ["customer", *ORDER_DATA_FIELDS]


def _check_actor(actor: Actor) -> None:
    # API keys are authorised by scope at the API edge (`require_write`); console users by role here.
    if isinstance(actor, User):
        check_perm(actor, "commerce.edit")


def _check_currency(currency: str, field_name: str = "currency") -> str:
    code = (currency or "").strip().upper()
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        raise ValidationFailed(
            "Invalid currency.", fields={field_name: "must be a three-letter ISO 4217 currency code"}
        )
    return code


def _money(value: Any, field_name: str) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        raise ValidationFailed("Invalid amount.", fields={field_name: "must be a decimal number"}) from None
    if not amount.is_finite() or amount < 0:
        raise ValidationFailed("Invalid amount.", fields={field_name: "must be a non-negative amount"})
    if amount != amount.quantize(CENT):
        raise ValidationFailed("Invalid amount.", fields={field_name: "has more than two decimal places"})
    return amount.quantize(CENT)


@dataclass
class ProductUpsert:
    product: Product
    created: bool
    changed: list[str] = field(default_factory=list)


def do_upsert_product(
    *,
    sku: str,
    name: str,
    actor: Actor,
    category_path: str = "",
    price: Decimal | None = None,
    currency: str = "CNY",
) -> ProductUpsert:
    """Create the product with this SKU, or update it to these values."""
    _check_actor(actor)
    sku = (sku or "").strip()
    if not sku or len(sku) > 64:
        raise ValidationFailed("Invalid SKU.", fields={"sku": "must be 1 to 64 characters"})
    if not (name or "").strip():
        raise ValidationFailed("A product needs a name.", fields={"name": "This field is required."})
    values = {
        "name": name.strip()[:255],
        "category_path": "/".join(p.strip() for p in (category_path or "").split("/") if p.strip())[:255],
        "price": _money(price, "price"),
        "currency": _check_currency(currency),
    }
    for attempt in range(2):
        try:
            with transaction.atomic():
                product = Product.objects.select_for_update().filter(sku=sku).first()
                if product is None:
                    product = Product.objects.create(sku=sku, **values)
                    record_audit(actor=actor, action="product.create", obj=product, after=snapshot(product))
                    return ProductUpsert(product, True, list(values))
                before = snapshot(product, PRODUCT_FIELDS)
                changed = [k for k, v in values.items() if getattr(product, k) != v]
                if changed:
                    for k in changed:
                        setattr(product, k, values[k])
                    product.save(update_fields=[*changed, "updated_at"])
                    record_audit(
                        actor=actor, action="product.update", obj=product, before=before,
                        after=snapshot(product, PRODUCT_FIELDS),
                    )  # fmt: skip
                return ProductUpsert(product, False, changed)
        except IntegrityError:
            # Two requests created the same SKU at once: the loser retries as an update.
            if attempt:
                raise
    raise AssertionError("unreachable")


@dataclass
class OrderUpsert:
    order: Order
    created: bool
    changed: list[str] = field(default_factory=list)
    lines_replaced: bool = False


def resolve_order_customer(ref: dict[str, Any] | None, *, actor: Actor, source: str) -> Customer | None:
    """The customer an order's `customer` block names (created when unknown), or None without one.

    Names from an order only fill empty profile fields: the shop's checkout form is not the place
    where a known customer's profile is edited."""
    if not ref:
        return None
    identities = [
        (kind, ref[key])
        for kind, key in (
            (IdentityKind.EXTERNAL, "user_id"),
            (IdentityKind.EMAIL, "email"),
            (IdentityKind.PHONE, "phone"),
        )
        if ref.get(key)
    ]
    if not identities:
        raise ValidationFailed(
            "The order's customer needs user_id, email or phone.",
            fields={"customer": "needs user_id, email or phone"},
        )
    traits = {k: ref[k] for k in ("first_name", "last_name") if ref.get(k)}
    try:
        resolution = do_upsert_customer(
            identities=[(str(k), v) for k, v in identities],
            traits=traits,
            actor=actor,
            source=source,
            overwrite=False,
        )
    except ValidationFailed as exc:
        fields = {}
        for key, msg in exc.fields.items():
            kind = key.removeprefix("identities.")
            fields["customer." + {"external": "user_id"}.get(kind, kind)] = msg
        raise ValidationFailed(exc.message, fields=fields) from exc
    return resolution.customer


def _clean_lines(lines: list[dict[str, Any]], currency: str) -> list[dict[str, Any]]:
    clean = []
    seen: set[int] = set()
    for i, line in enumerate(lines):
        line_no = int(line.get("line_no") or i + 1)
        if line_no in seen:
            raise ValidationFailed(
                "Duplicate line number.", fields={f"lines.{i}.line_no": f"{line_no} is used twice"}
            )
        seen.add(line_no)
        sku = str(line.get("sku") or "").strip()
        if not sku:
            raise ValidationFailed(
                "A line needs a SKU.", fields={f"lines.{i}.sku": "This field is required."}
            )
        quantity = Decimal(str(line.get("quantity", 1)))
        if quantity <= 0:
            raise ValidationFailed(
                "Invalid quantity.", fields={f"lines.{i}.quantity": "must be greater than 0"}
            )
        unit_price = _money(line.get("unit_price"), f"lines.{i}.unit_price")
        if unit_price is None:
            raise ValidationFailed(
                "A line needs a unit price.", fields={f"lines.{i}.unit_price": "This field is required."}
            )
        line_total = _money(line.get("line_total"), f"lines.{i}.line_total")
        if line_total is None:
            line_total = (quantity * unit_price).quantize(CENT, rounding=ROUND_HALF_UP)
        clean.append(
            {
                "line_no": line_no,
                "sku": sku,
                "name": str(line.get("name") or "")[:255],
                "quantity": quantity,
                "unit_price": unit_price,
                "line_total": line_total,
            }
        )
    return clean


def _lines_snapshot(order: Order) -> list[list[str]]:
    return [
        [str(line.line_no), line.sku, str(line.quantity), str(line.unit_price), str(line.line_total)]
        for line in order.lines.order_by("line_no")
    ]


def _replace_lines(order: Order, lines: list[dict[str, Any]]) -> bool:
    """Make the order's lines exactly `lines`, matching by line number: existing rows are updated in
    place (returns keep pointing at their line), new ones created, missing ones deleted. True if
    anything changed."""
    products = dict(Product.objects.filter(sku__in={ln["sku"] for ln in lines}).values_list("sku", "id"))
    existing = {line.line_no: line for line in order.lines.all()}
    to_create, to_update = [], []
    for values in lines:
        product_id = products.get(values["sku"])
        current = existing.pop(values["line_no"], None)
        if current is None:
            to_create.append(OrderLine(order=order, product_id=product_id, **values))
            continue
        fields = {**values, "product_id": product_id}
        if any(getattr(current, k) != v for k, v in fields.items()):
            for k, v in fields.items():
                setattr(current, k, v)
            to_update.append(current)
    if existing:
        OrderLine.objects.filter(pk__in=[line.pk for line in existing.values()]).delete()
    if to_update:
        OrderLine.objects.bulk_update(
            to_update, ["sku", "name", "quantity", "unit_price", "line_total", "product_id"]
        )
    if to_create:
        OrderLine.objects.bulk_create(to_create)
    return bool(existing or to_update or to_create)


def do_upsert_order(
    *,
    external_id: str,
    placed_at: dt.datetime,
    total: Decimal,
    currency: str,
    actor: Actor,
    status: str = OrderStatus.PAID,
    status_note: str = "",
    channel: str = "",
    subtotal: Decimal | None = None,
    shipping: Decimal | None = None,
    discount: Decimal | None = None,
    shipping_city: str = "",
    shipping_country: str = "",
    tracking_number: str = "",
    customer_ref: dict[str, Any] | None = None,
    customer: Customer | None = None,
    lines: list[dict[str, Any]] | None = None,
    source: str = "api",
) -> OrderUpsert:
    """Create or update the order with this external id.

    `lines`, when given, is the complete list and replaces the stored lines; None keeps them. A new
    status appends to the status history. The customer is `customer` (already resolved, for batch
    callers) or the one `customer_ref` (user_id/email/phone, names) names, created when unknown; with
    neither, a resend keeps the customer the order already has.
    """
    _check_actor(actor)
    external_id = (external_id or "").strip()
    if not external_id or len(external_id) > 64:
        raise ValidationFailed("Invalid order number.", fields={"external_id": "must be 1 to 64 characters"})
    if placed_at is None or timezone.is_naive(placed_at):
        # Refused rather than guessed: a naive time from a shop in another zone would be hours off.
        raise ValidationFailed(
            "placed_at needs a UTC offset.", fields={"placed_at": "must include a timezone offset"}
        )
    if status not in OrderStatus.values:
        raise ValidationFailed(
            "Unknown status.", fields={"status": f"must be one of {', '.join(OrderStatus.values)}"}
        )
    currency = _check_currency(currency)
    clean_lines = _clean_lines(lines, currency) if lines is not None else None
    values: dict[str, Any] = {
        "status": status,
        "channel": (channel or "")[:32],
        "placed_at": placed_at.astimezone(dt.UTC),
        "subtotal": _money(subtotal, "subtotal"),
        "shipping": _money(shipping, "shipping"),
        "discount": _money(discount, "discount"),
        "total": _money(total, "total"),
        "currency": currency,
        "shipping_city": (shipping_city or "")[:100],
        "shipping_country": (shipping_country or "").upper()[:2],
        "tracking_number": (tracking_number or "")[:64],
    }
    if values["total"] is None:
        raise ValidationFailed("An order needs a total.", fields={"total": "This field is required."})
    if values["subtotal"] is None and clean_lines:
        values["subtotal"] = sum((ln["line_total"] for ln in clean_lines), Decimal("0.00"))

    for attempt in range(2):
        try:
            with transaction.atomic():
                resolved = customer or resolve_order_customer(customer_ref, actor=actor, source=source)
                if resolved is not None:
                    values["customer"] = resolved
                order = Order.objects.select_for_update().filter(external_id=external_id).first()
                if order is None:
                    return _create_order(external_id, values, clean_lines, status_note, actor)
                return _update_order(order, values, clean_lines, status_note, actor)
        except IntegrityError:
            # A concurrent first send of the same order won the insert; apply ours as an update.
            if attempt:
                raise
    raise AssertionError("unreachable")


def _create_order(external_id, values, lines, status_note, actor) -> OrderUpsert:
    order = Order.objects.create(external_id=external_id, **values)
    OrderStatusChange.objects.create(
        order=order,
        from_status="",
        to_status=order.status,
        changed_at=order.placed_at,
        note=status_note[:255],
    )
    if lines:
        _replace_lines(order, lines)
    after = snapshot(order, ["external_id", *ORDER_FIELDS])
    after["lines"] = _lines_snapshot(order) if lines else []
    record_audit(actor=actor, action="order.create", obj=order, after=after)
    _emit_placed(order, actor)
    return OrderUpsert(order, True, list(values), lines_replaced=bool(lines))


def _emit_placed(order: Order, actor: Actor) -> None:
    events.emit(
        "order.placed",
        subject_type="order",
        subject_id=order.pk,
        data={"external_id": order.external_id, "status": order.status, "total": str(order.total),
              "currency": order.currency, "channel": order.channel, "customer": order.customer_id},
        actor=actor if isinstance(actor, User) else None,
    )  # fmt: skip


def _emit_status(order: Order, old: str, actor: Actor) -> None:
    events.emit(
        "order.status_changed",
        subject_type="order",
        subject_id=order.pk,
        data={"changes": {"status": [old, order.status]}, "external_id": order.external_id,
              "customer": order.customer_id},
        actor=actor if isinstance(actor, User) else None,
    )  # fmt: skip


def _update_order(order, values, lines, status_note, actor) -> OrderUpsert:
    before = snapshot(order, ORDER_FIELDS)
    old_status = order.status
    changed = []
    for key, value in values.items():
        attname = "customer_id" if key == "customer" else key
        new = value.pk if key == "customer" else value
        if getattr(order, attname) != new:
            setattr(order, attname, new)
            changed.append(attname)
    if lines is not None:
        before["lines"] = _lines_snapshot(order)
    if changed:
        order.save(update_fields=[*changed, "updated_at"])
    if "status" in changed:
        OrderStatusChange.objects.create(
            order=order,
            from_status=old_status,
            to_status=order.status,
            changed_at=timezone.now(),
            note=status_note[:255],
        )
        _emit_status(order, old_status, actor)
    lines_changed = lines is not None and _replace_lines(order, lines)
    if changed or lines_changed:
        after = snapshot(order, ORDER_FIELDS)
        if lines is not None:
            after["lines"] = _lines_snapshot(order)
        record_audit(actor=actor, action="order.update", obj=order, before=before, after=after)
    return OrderUpsert(
        order, False, changed + (["lines"] if lines_changed else []), lines_replaced=lines_changed
    )


def do_change_order_status(
    *, order: Order, status: str, actor: Actor, note: str = "", at: dt.datetime | None = None
) -> Order:
    """Move an order to a new status and append the step to its history (no-op if unchanged)."""
    _check_actor(actor)
    if status not in OrderStatus.values:
        raise ValidationFailed(
            "Unknown status.", fields={"status": f"must be one of {', '.join(OrderStatus.values)}"}
        )
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if locked.status == status:
            return locked
        old = locked.status
        locked.status = status
        locked.save(update_fields=["status", "updated_at"])
        OrderStatusChange.objects.create(
            order=locked,
            from_status=old,
            to_status=status,
            changed_at=at or timezone.now(),
            note=(note or "")[:255],
        )
        record_audit(
            actor=actor, action="order.status", obj=locked, before={"status": old}, after={"status": status}
        )
        _emit_status(locked, old, actor)
    return locked
