"""Products and orders for shops: upsert by the shop's own ids (resend-safe) and read back.

PUT answers 201 when it created the object and 200 when it updated (or found it unchanged).
"""

from __future__ import annotations

from decimal import Decimal

from django.http import HttpRequest
from ninja import Router, Status

from ecrm.core.api_auth import actor_of, require_write
from ecrm.core.exceptions import NotFound, PermissionDenied, ValidationFailed
from ecrm.core.models import ApiKey, ApiKeyScope, User
from ecrm.core.permissions import check_perm

from .models import Order, Product
from .schemas import OrderIn, OrderOut, ProductIn, ProductOut
from .services import do_upsert_order, do_upsert_product

router = Router(tags=["commerce"])


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _require_read(request: HttpRequest) -> None:
    """Read and write keys may read commerce data; tracking keys (public) may not; users need the role."""
    principal = request.auth
    if isinstance(principal, ApiKey):
        if principal.scope == ApiKeyScope.TRACK:
            raise PermissionDenied("A tracking key can only send events.", code="tracking_key")
        return
    if isinstance(principal, User):
        check_perm(principal, "commerce.view")
        return
    raise PermissionDenied("Not allowed.")


def product_out(product: Product, created: bool = False) -> dict:
    return {
        "sku": product.sku,
        "name": product.name,
        "category_path": product.category_path,
        "price": _money(product.price),
        "currency": product.currency,
        "created": created,
    }


def order_out(order: Order, created: bool = False) -> dict:
    # Two queries whatever the number of lines (lines, history); money as strings, never floats.
    return {
        "external_id": order.external_id,
        "status": order.status,
        "channel": order.channel,
        "placed_at": order.placed_at,
        "subtotal": _money(order.subtotal),
        "shipping": _money(order.shipping),
        "discount": _money(order.discount),
        "total": _money(order.total),
        "currency": order.currency,
        "shipping_city": order.shipping_city,
        "shipping_country": order.shipping_country,
        "tracking_number": order.tracking_number,
        "customer_id": order.customer_id,
        "lines": [
            {
                "line_no": line.line_no,
                "sku": line.sku,
                "name": line.name,
                "product_id": line.product_id,
                "quantity": str(line.quantity),
                "unit_price": _money(line.unit_price),
                "line_total": _money(line.line_total),
            }
            for line in order.lines.order_by("line_no")
        ],
        "status_history": [
            {
                "from_status": s.from_status,
                "to_status": s.to_status,
                "changed_at": s.changed_at,
                "note": s.note,
            }
            for s in order.status_history.all()
        ],
        "created": created,
    }


_UPSERT_RESPONSES = {
    "401": {"description": "Missing, unknown or revoked API key."},
    "403": {"description": "Read-only or tracking key."},
    "422": {
        "description": "Schema errors, with `fields` keyed by dotted field path (e.g. `lines.0.unit_price`)."
    },
}


@router.put(
    "/products/{sku}",
    response={200: ProductOut, 201: ProductOut},
    summary="Create or update a product by SKU",
    openapi_extra={"responses": _UPSERT_RESPONSES},
)
def put_product(request: HttpRequest, sku: str, payload: ProductIn):
    require_write(request)
    result = do_upsert_product(sku=sku, actor=actor_of(request), **payload.model_dump())
    return Status(201 if result.created else 200, product_out(result.product, result.created))


@router.get("/products/{sku}", response=ProductOut, summary="Read a product by SKU")
def get_product(request: HttpRequest, sku: str):
    _require_read(request)
    product = Product.objects.filter(sku=sku).first()
    if product is None:
        raise NotFound("No product with this SKU.")
    return product_out(product)


def _upsert_order(request: HttpRequest, external_id: str, payload: OrderIn):
    require_write(request)
    data = payload.model_dump(exclude={"external_id", "customer", "lines"})
    result = do_upsert_order(
        external_id=external_id,
        actor=actor_of(request),
        customer_ref=payload.customer.model_dump() if payload.customer else None,
        lines=[line.model_dump() for line in payload.lines] if payload.lines is not None else None,
        **data,
    )
    return Status(201 if result.created else 200, order_out(result.order, result.created))


@router.put(
    "/orders/{external_id}",
    response={200: OrderOut, 201: OrderOut},
    summary="Create or update an order by its order number",
    description="Resend-safe: the same order number updates the stored order. `lines`, when sent, is the "
    "complete list and replaces the stored lines. A changed `status` is appended to the status history. "
    "`customer` (user_id, email or phone) names the buyer, who is created when unknown.",
    openapi_extra={"responses": _UPSERT_RESPONSES},
)
def put_order(request: HttpRequest, external_id: str, payload: OrderIn):
    if payload.external_id and payload.external_id != external_id:
        raise ValidationFailed(
            "The order number in the body differs from the URL.", fields={"external_id": "must match the URL"}
        )
    return _upsert_order(request, external_id, payload)


@router.post(
    "/orders",
    response={200: OrderOut, 201: OrderOut},
    summary="Create or update an order (order number in the body)",
    openapi_extra={"responses": _UPSERT_RESPONSES},
)
def post_order(request: HttpRequest, payload: OrderIn):
    if not payload.external_id:
        raise ValidationFailed(
            "An order needs its order number.", fields={"external_id": "This field is required."}
        )
    return _upsert_order(request, payload.external_id, payload)


@router.get("/orders/{external_id}", response=OrderOut, summary="Read an order by its order number")
def get_order(request: HttpRequest, external_id: str):
    _require_read(request)
    order = Order.objects.filter(external_id=external_id).first()
    if order is None:
        raise NotFound("No order with this number.")
    return order_out(order)
