"""`seed_demo`: write a believable shop into the current database, fast.

Rows go in with `bulk_create` in batches of customers (one transaction per batch), not through the
per-row services: 5,000 customers with their orders and web sessions take seconds. What the services
guarantee still holds, because the generators produce it: identities are normalised and unique per
kind (lower-case emails, E.164 phones), names are folded with `normalize.display_name/normalize_name`,
every datetime is aware, money is Decimal and each order's total is subtotal + shipping - discount,
and lifecycle stage and tags follow from the purchase history.

With data already present it refuses unless `add=True`; then it adds new customers whose emails and
phones are new, reuses the catalogue by SKU and continues the order numbering.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections import Counter
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from ecrm.commerce.models import Order, OrderLine, OrderStatusChange, Product, Return
from ecrm.core.demo import ensure_demo_users
from ecrm.customers.duplicates import find_duplicates_for
from ecrm.customers.models import (
    Consent,
    ConsentChannel,
    ConsentPurpose,
    Customer,
    CustomerTag,
    DuplicateCandidate,
    Identity,
    IdentityKind,
    LifecycleStage,
    Tag,
)
from ecrm.customers.normalize import display_name, normalize_name
from ecrm.ingest.models import Event

from .behaviour import (
    EventPlan,
    OrderPlan,
    Shop,
    draw_buyer,
    lifecycle_stage,
    plan_orders,
    session_events,
)
from .catalogue import build_catalogue
from .people import PeopleFactory, Person

DUPLICATE_SHARE = 0.01
VISITOR_SHARE = 0.5  # anonymous visitors who never signed up, per customer
TAGS = {
    "vip": "#b8860b",
    "newsletter": "#2b7a78",
    "wholesale": "#6a4c93",
    "wechat": "#1aad19",
    "birthday-club": "#d1495b",
    "high-returns": "#8d99ae",
}
RETURN_REASONS = ["Wrong size", "Damaged in transit", "Not as described", "Changed my mind", "Arrived late"]


class SeedRefused(Exception):
    """The database already holds customers and adding was not asked for."""


@dataclass
class SeedReport:
    """What one run wrote, for the summary."""

    counts: dict[str, int] = field(default_factory=dict)
    stages: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    duplicate_ids: list[int] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"{name:>22}: {value:,}" for name, value in self.counts.items()]
        out.append(
            "       lifecycle stages: " + ", ".join(f"{k} {v:,}" for k, v in sorted(self.stages.items()))
        )
        out.append(f"{'seconds':>22}: {self.seconds:.1f}")
        return out


@dataclass
class _Planned:
    """One customer with everything that hangs off them, before it is stored."""

    person: Person
    signup: dt.datetime
    orders: list[OrderPlan]
    stage: str
    cookie: str | None
    sessions: list[tuple[str, list[EventPlan]]]  # (source, events)
    order_session_for: dict[int, int]
    tags: list[str]
    consents: list[tuple[str, str, bool, str]]
    duplicate: bool = False


def _signup_time(rng: random.Random, now: dt.datetime, days: int) -> dt.datetime:
    # The shop grows: more sign-ups recently than at the start of the history.
    fraction = rng.random() ** 0.75
    return now - dt.timedelta(days=days * (1 - fraction) + 0.5, seconds=rng.randrange(86400))


class _Seeder:
    def __init__(self, *, seed: int, days: int, event_days: int, now: dt.datetime, taken=((), ())):
        self.rng = random.Random(seed)
        self.now = now
        self.days = days
        self.window_start = now - dt.timedelta(days=min(event_days, days))
        self.people = PeopleFactory(self.rng, taken_emails=taken[0], taken_phones=taken[1], today=now.date())
        self.catalogue = build_catalogue(random.Random(seed))
        self.shop = Shop(self.rng, self.catalogue)

    # -- planning (pure Python, no database)
    def plan(self, person: Person, *, duplicate: bool = False) -> _Planned:
        rng, now = self.rng, self.now
        signup = _signup_time(rng, now, self.days)
        favourites = self.shop.favourite_departments()
        channels = rng.choice(
            [["app"], ["app", "web"], ["web"], ["web", "marketplace"], ["app", "marketplace"]]
        )
        # A second profile is usually a guest checkout or a forgotten account: one order at most.
        buyer = (1.0, 0.95) if duplicate and rng.random() < 0.6 else (None if duplicate else draw_buyer(rng))
        orders, dropped = plan_orders(
            rng,
            self.shop,
            signup=signup,
            now=now,
            buyer=buyer,
            favourites=favourites,
            channels=channels,
            city=person.city,
            abroad=person.country != "CN",
        )
        cookie = f"a-{rng.getrandbits(64):016x}" if rng.random() < 0.8 else None
        sessions: list[tuple[str, list[EventPlan]]] = []
        order_session_for: dict[int, int] = {}

        def device_for(source: str) -> str:
            return "app" if source == "app" else rng.choice(["mobile", "mobile", "desktop"])

        def new_session(start: dt.datetime, source: str, order: OrderPlan | None = None, index: int = -1):
            sid = f"s-{rng.getrandbits(48):012x}"
            events = session_events(
                rng,
                self.shop,
                start=start,
                session_id=sid,
                favourites=favourites,
                device=device_for(source),
                order=order,
            )
            if order is not None:  # the visit ends with the purchase, at the order's time
                shift = order.placed_at - events[-1].occurred_at
                for e in events:
                    e.occurred_at += shift
                order_session_for[index] = len(sessions)
            sessions.append((source, events))

        if cookie and signup >= self.window_start and rng.random() < 0.5:
            for _ in range(rng.randint(1, 2)):  # browsed anonymously before signing up
                new_session(signup - dt.timedelta(days=rng.uniform(0.1, 14)), "tracker")
        for i, order in enumerate(orders):
            if order.channel in ("web", "app") and order.placed_at >= self.window_start:
                new_session(
                    order.placed_at - dt.timedelta(minutes=30),
                    "app" if order.channel == "app" else "tracker",
                    order,
                    i,
                )
        begin = max(signup, self.window_start)
        end = min(now, orders[-1].placed_at + dt.timedelta(days=60)) if dropped and orders else now
        if end > begin:
            months = (end - begin).total_seconds() / (30 * 86400)
            rate = 0.25 if not orders else 0.5 + min(len(orders), 20) / 8
            for _ in range(min(40, int(rng.expovariate(1 / max(months * rate, 0.01)) + 0.5))):
                start = begin + (end - begin) * rng.random()
                new_session(start, "app" if "app" in channels and rng.random() < 0.6 else "tracker")
        stage = lifecycle_stage(orders, now)
        consents = []
        if person.email:
            consents.append(
                (ConsentPurpose.MARKETING, ConsentChannel.EMAIL, rng.random() < 0.55, "signup form")
            )
            consents.append((ConsentPurpose.SERVICE, ConsentChannel.EMAIL, True, "signup form"))
        if person.phone:
            consents.append((ConsentPurpose.MARKETING, ConsentChannel.SMS, rng.random() < 0.35, "checkout"))
        if cookie:
            consents.append(
                (ConsentPurpose.ANALYTICS, ConsentChannel.WEB, rng.random() < 0.8, "cookie banner")
            )
        tags = []
        if stage == LifecycleStage.VIP:
            tags.append("vip")
        if any(p == ConsentPurpose.MARKETING and c == ConsentChannel.EMAIL and g for p, c, g, _ in consents):
            tags.append("newsletter")
        if orders and rng.random() < 0.015:
            tags.append("wholesale")
        if person.chinese and rng.random() < 0.3:
            tags.append("wechat")
        if person.birthday and rng.random() < 0.15:
            tags.append("birthday-club")
        if sum(1 for o in orders if o.returned_line is not None) >= 2:
            tags.append("high-returns")
        return _Planned(
            person, signup, orders, stage, cookie, sessions, order_session_for, tags, consents, duplicate
        )

    def visitor_sessions(self) -> tuple[str, list[tuple[str, list[EventPlan]]]]:
        """An anonymous visitor who never signed up: one to three visits in the tracking window."""
        rng = self.rng
        cookie = f"a-{rng.getrandbits(64):016x}"
        favourites = self.shop.favourite_departments()
        span = self.now - self.window_start
        sessions = []
        for _ in range(rng.randint(1, 3)):
            sid = f"s-{rng.getrandbits(48):012x}"
            start = self.window_start + span * rng.random()
            events = session_events(
                rng,
                self.shop,
                start=start,
                session_id=sid,
                favourites=favourites,
                device=rng.choice(["mobile", "mobile", "desktop"]),
            )
            sessions.append(("tracker", events))
        return cookie, sessions


def _event_id(rng: random.Random) -> str:
    return f"demo-{rng.getrandbits(96):024x}"


def _next_order_number() -> int:
    last = (
        Order.objects.filter(external_id__regex=r"^SO[0-9]{8}$")
        .order_by("-external_id")
        .values_list("external_id", flat=True)
        .first()
    )
    return int(last[2:]) + 1 if last else 10000001


def _store_products(seeder: _Seeder) -> list[int]:
    """Upsert the catalogue by SKU; returns product ids in catalogue order."""
    existing = dict(
        Product.objects.filter(sku__in=[p.sku for p in seeder.catalogue]).values_list("sku", "id")
    )
    new = [
        Product(
            sku=p.sku,
            name=p.name,
            category_path=p.category_path,
            price=p.price,
            currency="CNY",
            created_at=seeder.now - dt.timedelta(days=seeder.days),
        )
        for p in seeder.catalogue
        if p.sku not in existing
    ]
    Product.objects.bulk_create(new, batch_size=500)
    existing.update(Product.objects.filter(sku__in=[p.sku for p in new]).values_list("sku", "id"))
    return [existing[p.sku] for p in seeder.catalogue]


def _write_batch(
    seeder: _Seeder,
    planned: list[_Planned],
    product_ids: list[int],
    tag_ids: dict[str, int],
    order_no: int,
    counts: Counter,
) -> tuple[int, list[int]]:
    """Store one batch of planned customers; returns the next order number and the duplicates' ids."""
    rng = seeder.rng
    catalogue = seeder.catalogue
    customers = []
    for p in planned:
        person = p.person
        name = display_name(person.first_name, person.last_name)
        event_times = [e.occurred_at for _, events in p.sessions for e in events]
        order_times = [o.placed_at for o in p.orders]
        seen = [p.signup, *event_times, *order_times]
        customers.append(
            Customer(
                first_name=person.first_name,
                last_name=person.last_name,
                display_name=name,
                search_name=normalize_name(name),
                email=person.email,
                phone=person.phone,
                birthday=person.birthday,
                gender=person.gender,
                locale=person.locale,
                city=person.city,
                country=person.country,
                lifecycle_stage=p.stage,
                created_at=p.signup,
                first_seen_at=min(seen),
                last_seen_at=max(seen),
            )
        )
    Customer.objects.bulk_create(customers, batch_size=500)

    identities, customer_tags, consents = [], [], []
    orders: list[Order] = []
    order_plans: list[tuple[_Planned, int, OrderPlan]] = []
    for p, customer in zip(planned, customers, strict=True):
        person = p.person
        source = "signup"
        if person.email:
            identities.append(
                Identity(
                    customer=customer,
                    kind=IdentityKind.EMAIL,
                    value=person.email,
                    source=source,
                    created_at=p.signup,
                )
            )
        if person.phone:
            identities.append(
                Identity(
                    customer=customer,
                    kind=IdentityKind.PHONE,
                    value=person.phone,
                    source=source,
                    created_at=p.signup,
                )
            )
        if p.cookie:
            identities.append(
                Identity(
                    customer=customer,
                    kind=IdentityKind.ANONYMOUS,
                    value=p.cookie,
                    source="tracker",
                    created_at=p.signup,
                )
            )
        customer_tags += [
            CustomerTag(customer=customer, tag_id=tag_ids[t], created_at=p.signup) for t in p.tags
        ]
        consents += [
            Consent(
                customer=customer,
                purpose=purpose,
                channel=channel,
                granted=granted,
                source=src,
                recorded_at=p.signup,
            )
            for purpose, channel, granted, src in p.consents
        ]
        for i, plan in enumerate(p.orders):
            orders.append(
                Order(
                    external_id=f"SO{order_no:08d}",
                    customer=customer,
                    status=plan.status,
                    channel=plan.channel,
                    placed_at=plan.placed_at,
                    subtotal=plan.subtotal,
                    shipping=plan.shipping,
                    discount=plan.discount,
                    total=plan.total,
                    currency="CNY",
                    shipping_city=plan.shipping_city or person.city,
                    shipping_country=person.country,
                    created_at=plan.placed_at,
                    tracking_number=f"SF{rng.randrange(10**11, 10**12)}" if len(plan.history) > 2 else "",
                )
            )
            order_plans.append((p, i, plan))
            order_no += 1
    Identity.objects.bulk_create(identities, batch_size=1000)
    CustomerTag.objects.bulk_create(customer_tags, batch_size=1000)
    Consent.objects.bulk_create(consents, batch_size=1000)
    Order.objects.bulk_create(orders, batch_size=1000)

    lines, history = [], []
    for order, (_, _, plan) in zip(orders, order_plans, strict=True):
        for n, line in enumerate(plan.lines, start=1):
            product = catalogue[line.product_index]
            lines.append(
                OrderLine(
                    order=order,
                    line_no=n,
                    product_id=product_ids[line.product_index],
                    sku=product.sku,
                    name=product.name,
                    quantity=line.quantity,
                    unit_price=line.unit_price,
                    line_total=line.line_total,
                )
            )
        history += [
            OrderStatusChange(order=order, from_status=a, to_status=b, changed_at=at)
            for a, b, at in plan.history
        ]
    OrderLine.objects.bulk_create(lines, batch_size=1000)
    OrderStatusChange.objects.bulk_create(history, batch_size=1000)

    returns, cursor = [], 0
    for order, (_, _, plan) in zip(orders, order_plans, strict=True):
        order_lines = lines[cursor : cursor + len(plan.lines)]
        cursor += len(plan.lines)
        if plan.returned_line is None:
            continue
        line = order_lines[plan.returned_line]
        refunded = plan.return_status == "refunded"
        returns.append(
            Return(
                order=order,
                order_line=line,
                external_id=f"RT{order.external_id[2:]}",
                quantity=line.quantity,
                reason=rng.choice(RETURN_REASONS),
                status=plan.return_status,
                refund_amount=line.line_total if refunded else None,
                created_at=order.placed_at,
            )
        )
    Return.objects.bulk_create(returns, batch_size=1000)

    events = []
    order_ids = {(id(p), i): o.external_id for o, (p, i, _) in zip(orders, order_plans, strict=True)}
    for p, customer in zip(planned, customers, strict=True):
        by_session = {s: i for i, s in p.order_session_for.items()}
        for s, (source, session) in enumerate(p.sessions):
            order_number = order_ids.get((id(p), by_session[s])) if s in by_session else None
            for e in session:
                props = e.properties
                if e.type == "purchase" and order_number:
                    props = {**props, "order_id": order_number}
                events.append(
                    Event(
                        event_id=_event_id(rng),
                        customer=customer,
                        anonymous_id=p.cookie or "",
                        type=e.type,
                        name=e.name,
                        properties=props,
                        context=e.context,
                        occurred_at=e.occurred_at,
                        received_at=e.occurred_at + dt.timedelta(seconds=rng.randint(1, 20)),
                        source=source,
                    )
                )
    Event.objects.bulk_create(events, batch_size=2000)

    counts["customers"] += len(customers)
    counts["identities"] += len(identities)
    counts["customer tags"] += len(customer_tags)
    counts["consents"] += len(consents)
    counts["orders"] += len(orders)
    counts["order lines"] += len(lines)
    counts["order status changes"] += len(history)
    counts["returns"] += len(returns)
    counts["events"] += len(events)
    return order_no, [c.pk for c, p in zip(customers, planned, strict=True) if p.duplicate]


def _write_visitors(seeder: _Seeder, visitors: int, counts: Counter, chunk: int = 1000) -> None:
    rng = seeder.rng
    for start in range(0, visitors, chunk):
        events = []
        for _ in range(min(chunk, visitors - start)):
            cookie, sessions = seeder.visitor_sessions()
            for source, session in sessions:
                events += [
                    Event(
                        event_id=_event_id(rng),
                        customer=None,
                        anonymous_id=cookie,
                        type=e.type,
                        name=e.name,
                        properties=e.properties,
                        context=e.context,
                        occurred_at=e.occurred_at,
                        received_at=e.occurred_at + dt.timedelta(seconds=rng.randint(1, 20)),
                        source=source,
                    )
                    for e in session
                ]
        with transaction.atomic():
            Event.objects.bulk_create(events, batch_size=2000)
        counts["events"] += len(events)
        counts["anonymous visitors"] += min(chunk, visitors - start)


def seed_demo(
    *,
    customers: int,
    seed: int = 42,
    days: int = 730,
    event_days: int = 180,
    add: bool = False,
    now: dt.datetime | None = None,
    batch_size: int = 1000,
    progress=None,
) -> SeedReport:
    """Build the demo shop: catalogue, `customers` customer profiles (about 1% of them second
    profiles of the same person, for the merge queue), their orders and web sessions, anonymous
    visitors, and the duplicate candidates found for the second profiles."""
    if customers < 1:
        raise ValueError("customers must be at least 1")
    started = time.monotonic()
    now = (now or timezone.now()).replace(microsecond=0)
    ensure_demo_users()
    existing = Customer.objects.count()
    if existing and not add:
        raise SeedRefused(f"The database already has {existing:,} customers; use --add to add more.")
    taken: tuple = ((), ())
    if existing:
        taken = (
            Identity.objects.filter(kind=IdentityKind.EMAIL).values_list("value", flat=True).iterator(),
            Identity.objects.filter(kind=IdentityKind.PHONE).values_list("value", flat=True).iterator(),
        )
    # Adding to an existing shop draws other people than the first run with the same seed did.
    seeder = _Seeder(seed=seed + existing, days=days, event_days=event_days, now=now, taken=taken)
    seeder.catalogue = build_catalogue(random.Random(seed))  # same catalogue (SKUs) whatever was there
    report = SeedReport()
    counts: Counter = Counter()
    with transaction.atomic():
        product_ids = _store_products(seeder)
        for name, color in TAGS.items():
            Tag.objects.get_or_create(name=name, defaults={"color": color})
    tag_ids = dict(Tag.objects.filter(name__in=TAGS).values_list("name", "id"))
    order_no = _next_order_number()
    n_duplicates = int(customers * DUPLICATE_SHARE) if customers >= 50 else 0
    n_people = customers - n_duplicates
    duplicate_every = n_people // n_duplicates if n_duplicates else 0
    duplicate_ids: list[int] = []
    made = dups_made = 0
    while made + dups_made < customers:
        planned: list[_Planned] = []
        while len(planned) < batch_size and made + dups_made < customers:
            person = seeder.people.make()
            planned.append(seeder.plan(person))
            made += 1
            # A second profile for every `duplicate_every`-th person with a distinctive enough name
            # (a three-character Chinese name or an English one), so the name look-up finds the pair.
            if (
                dups_made < n_duplicates
                and made >= duplicate_every * (dups_made + 1)
                and (not person.chinese or len(person.first_name) == 2)
                and (person.email or (person.phone or "").startswith("+86"))
            ):
                planned.append(seeder.plan(seeder.people.duplicate_of(person), duplicate=True))
                dups_made += 1
            if made >= n_people and dups_made < n_duplicates:
                n_duplicates = dups_made  # ran out of suitable people: fill up with ordinary ones
                n_people = customers - dups_made
        with transaction.atomic():
            order_no, dups = _write_batch(seeder, planned, product_ids, tag_ids, order_no, counts)
        duplicate_ids += dups
        if progress:
            progress(made + dups_made, customers)
    _write_visitors(seeder, int(customers * VISITOR_SHARE), counts)
    before = DuplicateCandidate.objects.count()
    for pk in duplicate_ids:
        find_duplicates_for(pk)
    report.counts = {
        "products": len(product_ids),
        **counts,
        "second profiles": len(duplicate_ids),
        "duplicate candidates": DuplicateCandidate.objects.count() - before,
    }
    report.stages = dict(
        Customer.objects.values_list("lifecycle_stage")
        .annotate(n=Count("id"))
        .values_list("lifecycle_stage", "n")
    )
    report.duplicate_ids = duplicate_ids
    report.seconds = time.monotonic() - started
    return report
