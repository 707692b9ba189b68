"""How demo customers behave: when they buy, what goes in the basket, how their orders end, and
the web sessions around all that.

Purchases follow a BG/NBD-like story (Fader, Hardie and Lee, 2005): each buyer has their own
purchase rate drawn from a gamma distribution and, after every purchase, a chance (drawn from a
beta distribution) of never coming back. That alone gives the mix a real shop has: a long tail of
one-off buyers, lapsed ones, and a few loyal regulars with dozens of orders. On top of that, the
618 and Double 11 shopping festivals pull orders onto their dates.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from decimal import Decimal

from ecrm.commerce.models import OrderStatus
from ecrm.customers.models import LifecycleStage

from .catalogue import AFFINITIES, DEPARTMENT_WEIGHTS, DemoProduct

CENT = Decimal("0.01")
FREE_SHIPPING_FROM = Decimal("99")
SHIPPING_CN = Decimal("10.00")
SHIPPING_ABROAD = Decimal("60.00")
VIP_REVENUE = Decimal("8000")
VIP_ORDERS = 10
LAPSED_AFTER = dt.timedelta(days=365)
FESTIVALS = ((6, 18), (11, 11))  # 618 and Double 11
NOT_REVENUE = {OrderStatus.CANCELLED, OrderStatus.REFUNDED}

# Heterogeneity: purchase rate per year ~ Gamma(shape, scale); dropout after a purchase ~ Beta(a, b).
RATE_SHAPE, RATE_SCALE = 0.9, 4.5
DROPOUT_A, DROPOUT_B = 1.0, 3.2
LEAD_SHARE = 0.22  # signed up (newsletter, app install) but never bought
MAX_ORDERS = 150


@dataclass
class LinePlan:
    """One order line before it is stored."""

    product_index: int
    quantity: int
    unit_price: Decimal

    @property
    def line_total(self) -> Decimal:
        return (self.unit_price * self.quantity).quantize(CENT)


@dataclass
class OrderPlan:
    """One order before it is stored: money adds up (total = subtotal + shipping - discount)."""

    placed_at: dt.datetime
    channel: str
    status: str
    lines: list[LinePlan]
    shipping: Decimal
    discount: Decimal
    shipping_city: str
    festival: bool = False
    history: list[tuple[str, str, dt.datetime]] = field(default_factory=list)  # (from, to, at)
    returned_line: int | None = None  # index into lines
    return_status: str = ""

    @property
    def subtotal(self) -> Decimal:
        return sum((line.line_total for line in self.lines), Decimal("0.00"))

    @property
    def total(self) -> Decimal:
        return (self.subtotal + self.shipping - self.discount).quantize(CENT)


def lifecycle_stage(orders: list[OrderPlan], now: dt.datetime) -> str:
    """The stage a purchase history implies. Cancelled and refunded orders do not count as buying."""
    bought = [o for o in orders if o.status not in NOT_REVENUE]
    if not bought:
        return LifecycleStage.PROSPECT if orders else LifecycleStage.LEAD
    last = max(o.placed_at for o in bought)
    if now - last > LAPSED_AFTER:
        return LifecycleStage.LAPSED
    revenue = sum((o.total for o in bought), Decimal("0"))
    if revenue >= VIP_REVENUE or len(bought) >= VIP_ORDERS:
        return LifecycleStage.VIP
    return LifecycleStage.REPEAT if len(bought) >= 2 else LifecycleStage.CUSTOMER


class Shop:
    """Draws baskets from the catalogue with department preferences and cross-sell affinities."""

    def __init__(self, rng: random.Random, products: list[DemoProduct]):
        self.rng = rng
        self.products = products
        self.by_category: dict[str, list[int]] = {}
        self.by_department: dict[str, list[int]] = {}
        for i, p in enumerate(products):
            self.by_category.setdefault(p.category_path, []).append(i)
            self.by_department.setdefault(p.category_path.split("/")[0], []).append(i)
        self.departments = [d for d in DEPARTMENT_WEIGHTS if d in self.by_department]
        self.department_weights = [DEPARTMENT_WEIGHTS[d] for d in self.departments]

    def favourite_departments(self) -> list[str]:
        picks = self.rng.choices(self.departments, weights=self.department_weights, k=2)
        return list(dict.fromkeys(picks))

    def basket(self, favourites: list[str], *, festival: bool) -> list[LinePlan]:
        rng = self.rng
        department = rng.choice(favourites) if rng.random() < 0.8 else rng.choice(self.departments)
        anchor = rng.choice(self.by_department[department])
        chosen = [anchor]
        # Affinities first (phone -> case, charger), then the odd impulse buy; at most 4 lines.
        for category, probability in AFFINITIES.get(self.products[anchor].category_path, []):
            if len(chosen) < 4 and rng.random() < probability:
                pick = rng.choice(self.by_category[category])
                if pick not in chosen:
                    chosen.append(pick)
        while len(chosen) < 4 and rng.random() < 0.18:
            pick = rng.choice(self.by_department[rng.choice(favourites)])
            if pick not in chosen:
                chosen.append(pick)
        lines = []
        for index in chosen:
            price = self.products[index].price
            if festival:
                price = (price * Decimal("0.85")).quantize(CENT)  # festival price
            cheap = price < 100
            quantity = 1 if not cheap or rng.random() < 0.7 else rng.randint(2, 4)
            lines.append(LinePlan(product_index=index, quantity=quantity, unit_price=price))
        return lines


def _festival_snap(rng: random.Random, at: dt.datetime) -> tuple[dt.datetime, bool]:
    """Half of the orders placed in the ten days before 618 / Double 11 wait for the festival."""
    for month, day in FESTIVALS:
        festival = at.replace(month=month, day=day, hour=0, minute=0, second=0, microsecond=0)
        if dt.timedelta(0) <= festival - at <= dt.timedelta(days=10) and rng.random() < 0.5:
            return festival + dt.timedelta(seconds=rng.randrange(86400)), True
        if festival <= at < festival + dt.timedelta(days=1):
            return at, True
    return at, False


def purchase_times(
    rng: random.Random, start: dt.datetime, now: dt.datetime, rate_per_year: float, dropout: float
) -> tuple[list[dt.datetime], bool]:
    """BG/NBD story: buy at `start`, then after each purchase drop out with probability `dropout`,
    else wait an exponential time with the customer's own rate. Returns (times, dropped_out)."""
    times: list[dt.datetime] = []
    at = start
    rate_per_day = max(rate_per_year, 0.05) / 365.0
    while at <= now and len(times) < MAX_ORDERS:
        times.append(at)
        if rng.random() < dropout:
            return times, True
        at = at + dt.timedelta(days=rng.expovariate(rate_per_day), seconds=rng.randrange(3600))
    return times, False


def draw_buyer(rng: random.Random) -> tuple[float, float] | None:
    """(purchase rate per year, dropout probability), or None for a lead who never buys."""
    if rng.random() < LEAD_SHARE:
        return None
    return rng.gammavariate(RATE_SHAPE, RATE_SCALE), rng.betavariate(DROPOUT_A, DROPOUT_B)


def settle(rng: random.Random, order: OrderPlan, now: dt.datetime) -> None:
    """Give an order its status and status history from its age; some are cancelled, refunded or
    have a line returned."""
    at = order.placed_at
    age = now - at
    steps = [("", OrderStatus.PENDING, at)]
    if rng.random() < 0.05 and age > dt.timedelta(hours=2):
        steps.append(
            (OrderStatus.PENDING, OrderStatus.CANCELLED, at + dt.timedelta(minutes=rng.randint(5, 90)))
        )
        order.status, order.history = OrderStatus.CANCELLED, steps
        return
    timeline = [
        (OrderStatus.PAID, dt.timedelta(minutes=rng.randint(1, 30))),
        (OrderStatus.SHIPPED, dt.timedelta(hours=rng.randint(6, 48))),
        (OrderStatus.DELIVERED, dt.timedelta(days=rng.randint(1, 4))),
        (OrderStatus.COMPLETED, dt.timedelta(days=7)),
    ]
    status = OrderStatus.PENDING
    for next_status, wait in timeline:
        at = at + wait
        if at > now:
            break
        steps.append((status, next_status, at))
        status = next_status
    if status == OrderStatus.COMPLETED and rng.random() < 0.07:
        at = at + dt.timedelta(days=rng.randint(1, 20))
        if at <= now:
            order.returned_line = rng.randrange(len(order.lines))
            if len(order.lines) == 1 and rng.random() < 0.6:
                steps.append((status, OrderStatus.REFUNDED, at))  # the whole order came back
                status = OrderStatus.REFUNDED
                order.return_status = "refunded"
            else:
                order.return_status = rng.choice(
                    ["refunded", "refunded", "received", "rejected", "requested"]
                )
    order.status, order.history = status, steps


def plan_orders(
    rng: random.Random,
    shop: Shop,
    *,
    signup: dt.datetime,
    now: dt.datetime,
    buyer: tuple[float, float] | None,
    favourites: list[str],
    channels: list[str],
    city: str,
    abroad: bool,
) -> tuple[list[OrderPlan], bool]:
    """All orders of one customer, oldest first, and whether they have dropped out."""
    if buyer is None:
        return [], False
    rate, dropout = buyer
    first = signup + dt.timedelta(hours=rng.expovariate(1 / 30))  # most buy within days of signing up
    times, dropped = purchase_times(rng, first, now, rate, dropout)
    plans = []
    for at in times:
        at, festival = _festival_snap(rng, at)
        if at > now:
            continue
        lines = shop.basket(favourites, festival=festival)
        subtotal = sum((line.line_total for line in lines), Decimal("0.00"))
        if abroad:
            shipping = SHIPPING_ABROAD
        else:
            shipping = Decimal("0.00") if subtotal >= FREE_SHIPPING_FROM else SHIPPING_CN
        # Store coupons: 20 off 200, 50 off 500 for about a third of the orders that qualify.
        discount = Decimal("0.00")
        if subtotal >= 500 and rng.random() < 0.35:
            discount = Decimal("50.00")
        elif subtotal >= 200 and rng.random() < 0.35:
            discount = Decimal("20.00")
        plan = OrderPlan(
            placed_at=at,
            channel=rng.choice(channels),
            status=OrderStatus.PENDING,
            lines=lines,
            shipping=shipping,
            discount=discount,
            shipping_city=city if rng.random() < 0.9 else "",
            festival=festival,
        )
        settle(rng, plan, now)
        plans.append(plan)
    plans.sort(key=lambda o: o.placed_at)
    return plans, dropped


# --- Web sessions: page views -> product views -> add to cart -> checkout (-> purchase).

PAGES = [
    ("/", "Home"),
    ("/deals", "Deals"),
    ("/new", "New arrivals"),
    ("/search", "Search"),
    ("/account", "My account"),
    ("/help/shipping", "Shipping"),
]
REFERRERS = [
    "",
    "",
    "https://www.baidu.com/",
    "https://weixin.qq.com/",
    "https://www.xiaohongshu.com/",
    "https://www.douyin.com/",
    "https://www.google.com/",
]


@dataclass
class EventPlan:
    """One tracked event before it is stored."""

    type: str
    name: str
    occurred_at: dt.datetime
    properties: dict
    context: dict


def session_events(
    rng: random.Random,
    shop: Shop,
    *,
    start: dt.datetime,
    session_id: str,
    favourites: list[str],
    device: str,
    order: OrderPlan | None = None,
    order_number: str = "",
) -> list[EventPlan]:
    """One visit. Without an order each funnel step loses visitors; with one it reaches checkout
    and purchase with the order's own products."""
    products = shop.products
    ctx = {"session_id": session_id, "device": device}
    referrer = rng.choice(REFERRERS)
    if referrer:
        ctx["referrer"] = referrer
    at = start
    events: list[EventPlan] = []

    def add(type_: str, name: str, props: dict) -> None:
        nonlocal at
        events.append(EventPlan(type_, name, at, props, ctx))
        at = at + dt.timedelta(seconds=rng.randint(5, 180))

    for _ in range(1 + min(int(rng.expovariate(0.6)), 6)):
        path, title = rng.choice(PAGES)
        add("page", title, {"path": path, "title": title})
    if order is not None:
        viewed = [line.product_index for line in order.lines]
    elif rng.random() < 0.6:
        department = rng.choice(favourites)
        viewed = rng.sample(
            shop.by_department[department],
            k=min(len(shop.by_department[department]), 1 + int(rng.expovariate(0.8))),
        )
    else:
        viewed = []
    for index in viewed:
        p = products[index]
        add(
            "product_view",
            p.name,
            {"sku": p.sku, "name": p.name, "category": p.category_path, "price": str(p.price)},
        )
    carted = viewed if order is not None else [i for i in viewed if rng.random() < 0.3]
    for index in carted:
        p = products[index]
        add("add_to_cart", p.name, {"sku": p.sku, "quantity": 1, "price": str(p.price)})
    if carted and (order is not None or rng.random() < 0.45):
        add("checkout", "", {"items": len(carted)})
        if order is not None:
            add("purchase", "", {"order_id": order_number, "total": str(order.total), "currency": "CNY"})
    return events
