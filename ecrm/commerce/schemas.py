"""What shops send and read for products and orders. Money is a Decimal (send it as a string or a
number with at most two decimals) with a three-letter ISO 4217 currency; times need a UTC offset."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from ninja import Schema
from pydantic import AfterValidator, AwareDatetime, ConfigDict, Field, StringConstraints

OrderStatusIn = Literal["pending", "paid", "shipped", "delivered", "completed", "cancelled", "refunded"]


def _currency(value: str) -> str:
    code = value.strip().upper()
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        raise ValueError("must be a three-letter ISO 4217 currency code, such as CNY or USD")
    return code


Currency = Annotated[str, AfterValidator(_currency)]
Money = Annotated[Decimal, Field(max_digits=14, decimal_places=2, ge=0)]
Quantity = Annotated[Decimal, Field(max_digits=12, decimal_places=3, gt=0)]
Sku = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class _In(Schema):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ProductIn(_In):
    name: str = Field(min_length=1, max_length=255)
    category_path: str = Field("", max_length=255, description="Slash-separated, e.g. Home/Kitchen/Knives")
    price: Money | None = None
    currency: Currency = "CNY"


class ProductOut(Schema):
    sku: str
    name: str
    category_path: str
    price: str | None
    currency: str
    created: bool = False


class CustomerRefIn(_In):
    """Who placed the order: any of the shop's account id, email or phone (created if unknown)."""

    user_id: str | None = Field(
        None, max_length=254, description="The shop's account id (identity `external`)."
    )
    email: str | None = Field(None, max_length=254)
    phone: str | None = Field(None, max_length=32)
    first_name: str | None = Field(None, max_length=100)
    last_name: str | None = Field(None, max_length=100)


class OrderLineIn(_In):
    line_no: int | None = Field(None, ge=1, description="Default: position in the list, from 1.")
    sku: Sku
    name: str = Field("", max_length=255)
    quantity: Quantity = Decimal(1)
    unit_price: Money
    line_total: Money | None = Field(None, description="Default: quantity × unit_price.")


class OrderIn(_In):
    external_id: str | None = Field(
        None, min_length=1, max_length=64, description="The shop's order number (taken from the URL on PUT)."
    )
    status: OrderStatusIn = "paid"
    status_note: str = Field("", max_length=255, description="Why the status changed, kept in the history.")
    channel: str = Field("", max_length=32)
    placed_at: AwareDatetime = Field(description="With a UTC offset; naive times are refused. Stored in UTC.")
    subtotal: Money | None = Field(None, description="Default: the sum of the lines when lines are sent.")
    shipping: Money | None = None
    discount: Money | None = None
    total: Money
    currency: Currency
    shipping_city: str = Field("", max_length=100)
    shipping_country: str = Field("", max_length=2)
    tracking_number: str = Field("", max_length=64)
    customer: CustomerRefIn | None = None
    lines: list[OrderLineIn] | None = Field(
        None,
        max_length=1000,
        description="The complete list of lines; replaces the stored lines. Omit to keep them.",
    )


class OrderLineOut(Schema):
    line_no: int
    sku: str
    name: str
    product_id: int | None
    quantity: str
    unit_price: str
    line_total: str


class StatusChangeOut(Schema):
    from_status: str
    to_status: str
    changed_at: dt.datetime
    note: str


class OrderOut(Schema):
    external_id: str
    status: str
    channel: str
    placed_at: dt.datetime
    subtotal: str | None
    shipping: str | None
    discount: str | None
    total: str
    currency: str
    shipping_city: str
    shipping_country: str
    tracking_number: str
    customer_id: int | None
    lines: list[OrderLineOut]
    status_history: list[StatusChangeOut]
    created: bool = False
