"""A small simulated shop for the analytics tests: customers who buy as a Poisson process until they
drop out (the BG/NBD story), with products bought in pairs so that basket rules exist. Built with
bulk_create (the models are what the job reads; the write services are tested in their own apps)."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import numpy as np
from django.utils import timezone

from ecrm.commerce.models import Order, OrderLine, Product
from ecrm.customers.models import Customer

_seq = itertools.count(1)
PRODUCTS = [("TEA-1", "Green tea", "Food/Tea"), ("CUP-1", "Tea cup", "Home/Kitchen"), ("POT-1", "Tea pot", "Home/Kitchen"),
            ("BAG-1", "Tote bag", "Fashion/Bags"), ("PEN-1", "Pen", "Office/Writing")]  # fmt: skip


def make_products() -> dict[str, Product]:
    out = {}
    for sku, name, cat in PRODUCTS:
        out[sku], _ = Product.objects.get_or_create(sku=sku, defaults={"name": name, "category_path": cat,
                                                                        "price": Decimal("10")})  # fmt: skip
    return out


def make_shop(
    *,
    customers: int = 160,
    days: int = 420,
    seed: int = 3,
    currency: str = "CNY",
    names: list[str] | None = None,
) -> list[Customer]:
    """Customers with order histories over the last `days` days (all in the past)."""
    rng = np.random.default_rng(seed)
    products = make_products()
    now = timezone.now()
    people = Customer.objects.bulk_create(
        [
            Customer(
                display_name=(names[i] if names and i < len(names) else f"Customer {next(_seq)}"),
                first_name=f"C{i}",
            )
            for i in range(customers)
        ]  # fmt: skip
    )
    orders, line_specs = [], []
    for person in people:
        rate = rng.gamma(0.8, 1 / 25)  # purchases per day while active
        life = rng.exponential(300)
        start = rng.uniform(0, days - 5)
        t = start
        spend = rng.gamma(4, 25)
        while t < days and t - start < life:
            placed = now - dt.timedelta(days=days - t, hours=1)
            total = Decimal(str(round(max(1.0, rng.gamma(6, spend / 6)), 2)))
            orders.append(Order(external_id=f"T-{next(_seq):07d}", customer=person, status="completed", channel="web",
                                placed_at=placed, total=total, currency=currency, shipping_country="CN",
                                shipping_city="Shanghai" if rng.random() < 0.6 else "Beijing"))  # fmt: skip
            pair = rng.random() < 0.5
            line_specs.append(
                ["TEA-1", "CUP-1"] if pair else [str(rng.choice(["POT-1", "BAG-1", "PEN-1", "TEA-1"]))]
            )
            t += rng.exponential(1 / max(rate, 1e-3))
    Order.objects.bulk_create(orders, batch_size=2000)
    lines = []
    for order, skus in zip(orders, line_specs, strict=True):
        share = (order.total / len(skus)).quantize(Decimal("0.01"))
        for n, sku in enumerate(skus, start=1):
            amount = (
                share if n < len(skus) else order.total - share * (len(skus) - 1)
            )  # lines add up to the total
            lines.append(OrderLine(order=order, line_no=n, product=products[sku], sku=sku, name=sku, quantity=1,
                                   unit_price=amount, line_total=amount))  # fmt: skip
    OrderLine.objects.bulk_create(lines, batch_size=2000)
    return people


def add_order(customer, *, days_ago: float, total: str = "50.00", currency: str = "CNY", status: str = "completed",
              sku: str = "TEA-1") -> Order:  # fmt: skip
    order = Order.objects.create(
        external_id=f"X-{next(_seq):07d}", customer=customer, status=status, channel="app",
        placed_at=timezone.now() - dt.timedelta(days=days_ago), total=Decimal(total), currency=currency,
    )  # fmt: skip
    OrderLine.objects.create(order=order, line_no=1, sku=sku, name=sku, quantity=1, unit_price=Decimal(total),
                             line_total=Decimal(total))  # fmt: skip
    return order
