"""`manage.py seed`: the demo shop it builds keeps every invariant the services keep."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter, defaultdict
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count

from ecrm.commerce.models import Order, OrderLine, OrderStatus, OrderStatusChange, Product, Return
from ecrm.core.models import User
from ecrm.customers.models import (
    Consent,
    Customer,
    CustomerTag,
    DuplicateCandidate,
    Identity,
    IdentityKind,
    LifecycleStage,
)
from ecrm.customers.normalize import display_name, normalize_email, normalize_name, normalize_phone
from ecrm.ingest.demo.catalogue import build_catalogue
from ecrm.ingest.models import Event

N = 400


@pytest.fixture
def seeded(db):
    out = StringIO()
    call_command("seed", customers=N, seed=7, days=730, stdout=out)
    return out.getvalue()


def _cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def test_summary_and_counts(seeded):
    assert "Seeded a demo shop" in seeded
    assert f"customers: {N}" in seeded
    assert Customer.objects.count() == N
    assert Product.objects.count() == 200
    # 1% second profiles of the same person, each found by the duplicate detector.
    assert "second profiles: 4" in seeded
    assert {u.username for u in User.objects.all()} >= {"admin", "manager", "agent_li", "agent_bob", "nobody"}


def test_catalogue_has_category_paths_and_cny_prices(seeded):
    paths = set(Product.objects.values_list("category_path", flat=True))
    assert {
        "Electronics/Phones",
        "Electronics/Phones/Accessories",
        "Home/Kitchen",
        "Beauty/Skincare",
        "Fashion/Women/Dresses",
    } <= paths
    for product in Product.objects.all():
        assert product.currency == "CNY"
        assert isinstance(product.price, Decimal) and product.price > 0
    # The same seed gives the same catalogue.
    assert [p.sku for p in build_catalogue(__import__("random").Random(7))] == list(
        Product.objects.order_by("id").values_list("sku", flat=True)
    )


def test_identities_are_normalised_unique_and_match_the_profile(seeded):
    identities = list(Identity.objects.all())
    assert len({(i.kind, i.value) for i in identities}) == len(identities)
    by_customer = defaultdict(set)
    for ident in identities:
        by_customer[ident.customer_id].add((ident.kind, ident.value))
        if ident.kind == IdentityKind.EMAIL:
            assert ident.value == normalize_email(ident.value) == ident.value.lower()
        elif ident.kind == IdentityKind.PHONE:
            assert ident.value == normalize_phone(ident.value)
            assert re.fullmatch(r"\+[1-9]\d{7,14}", ident.value)
    cn_phones = [i.value for i in identities if i.kind == IdentityKind.PHONE and i.value.startswith("+86")]
    assert cn_phones and all(re.fullmatch(r"\+861[3-9]\d{9}", p) for p in cn_phones)
    for customer in Customer.objects.all():
        assert customer.email or customer.phone
        if customer.email:
            assert (IdentityKind.EMAIL, customer.email) in by_customer[customer.pk]
        if customer.phone:
            assert (IdentityKind.PHONE, customer.phone) in by_customer[customer.pk]
        assert customer.display_name == display_name(customer.first_name, customer.last_name)
        assert customer.search_name == normalize_name(customer.display_name)
        assert customer.first_seen_at.tzinfo is not None and customer.first_seen_at <= customer.last_seen_at


def test_names_are_mostly_chinese_with_family_name_last(seeded):
    customers = list(Customer.objects.all())
    chinese = [c for c in customers if _cjk(c.last_name)]
    assert 0.8 * N < len(chinese) < N  # mostly Chinese, some English names
    for c in chinese[:50]:
        assert c.display_name == c.last_name + c.first_name and len(c.last_name) == 1
    english = [c for c in customers if not _cjk(c.display_name)]
    assert all(c.display_name == f"{c.first_name} {c.last_name}" for c in english)
    assert len({c.city for c in customers}) > 15 and {"CN"} < {c.country for c in customers}


def test_every_order_adds_up(seeded):
    lines = defaultdict(list)
    for line in OrderLine.objects.all():
        assert line.line_total == line.unit_price * line.quantity
        lines[line.order_id].append(line)
    orders = list(Order.objects.all())
    assert len(orders) > N
    for order in orders:
        assert 1 <= len(lines[order.pk]) <= 4
        assert [ln.line_no for ln in lines[order.pk]] == list(range(1, len(lines[order.pk]) + 1))
        assert order.subtotal == sum(ln.line_total for ln in lines[order.pk])
        assert order.total == order.subtotal + order.shipping - order.discount
        assert order.currency == "CNY" and order.shipping_city
        assert order.placed_at.tzinfo is not None
    assert Counter(o.channel for o in orders).keys() == {"web", "app", "marketplace"}
    statuses = Counter(o.status for o in orders)
    assert statuses[OrderStatus.COMPLETED] > 0.7 * len(orders)
    assert statuses[OrderStatus.CANCELLED] > 0 and statuses[OrderStatus.REFUNDED] > 0


def test_status_history_ends_in_the_order_status(seeded):
    last = {}
    for change in OrderStatusChange.objects.order_by("order_id", "changed_at", "id"):
        assert change.order_id not in last or last[change.order_id] == change.from_status
        last[change.order_id] = change.to_status
    assert last == dict(Order.objects.values_list("id", "status"))
    for ret in Return.objects.select_related("order_line"):
        assert ret.order_line.order_id == ret.order_id
        assert ret.refund_amount is None or ret.refund_amount == ret.order_line.line_total
    assert Return.objects.exists()


def test_purchase_behaviour_varies_and_stage_follows_it(seeded):
    now = Order.objects.latest("placed_at").placed_at
    per_customer = dict(Customer.objects.annotate(n=Count("orders")).values_list("id", "n"))
    counts = Counter(per_customer.values())
    assert counts[0] > 0.1 * N  # leads who never bought
    assert counts[1] > 0.2 * N  # one-off buyers
    assert sum(v for k, v in counts.items() if k >= 6) > 0.03 * N  # loyal regulars
    stages = Counter(Customer.objects.values_list("lifecycle_stage", flat=True))
    assert {
        LifecycleStage.LEAD,
        LifecycleStage.CUSTOMER,
        LifecycleStage.REPEAT,
        LifecycleStage.VIP,
        LifecycleStage.LAPSED,
    } <= stages.keys()
    vip_tagged = set(CustomerTag.objects.filter(tag__name="vip").values_list("customer_id", flat=True))
    bought = defaultdict(list)
    for cid, status, placed in Order.objects.values_list("customer_id", "status", "placed_at"):
        if status not in (OrderStatus.CANCELLED, OrderStatus.REFUNDED):
            bought[cid].append(placed)
    for customer in Customer.objects.all():
        stage = customer.lifecycle_stage
        assert (stage == LifecycleStage.VIP) == (customer.pk in vip_tagged)
        if per_customer[customer.pk] == 0:
            assert stage == LifecycleStage.LEAD
        elif stage == LifecycleStage.LAPSED:
            assert now - max(bought[customer.pk]) > dt.timedelta(days=300)
        elif stage == LifecycleStage.REPEAT:
            assert len(bought[customer.pk]) >= 2
        elif stage == LifecycleStage.CUSTOMER:
            assert len(bought[customer.pk]) == 1


def test_newsletter_tag_matches_marketing_email_consent(seeded):
    consented = set(
        Consent.objects.filter(purpose="marketing", channel="email", granted=True).values_list(
            "customer_id", flat=True
        )
    )
    tagged = set(CustomerTag.objects.filter(tag__name="newsletter").values_list("customer_id", flat=True))
    assert consented == tagged and len(tagged) > 0.2 * N


def test_duplicates_wait_in_the_review_queue(seeded):
    candidates = list(DuplicateCandidate.objects.select_related("customer_a", "customer_b"))
    assert len(candidates) >= 4
    for c in candidates:
        assert c.status == "open" and c.score >= 0.7
        assert "same name" in c.reasons and ({"similar email", "similar phone"} & set(c.reasons))
        assert c.customer_a.search_name == c.customer_b.search_name


def test_web_sessions_form_a_funnel(seeded):
    sessions: dict[str, set] = defaultdict(set)
    for type_, ctx in Event.objects.values_list("type", "context"):
        sessions[type_].add(ctx["session_id"])
    funnel = [len(sessions[t]) for t in ("page", "product_view", "add_to_cart", "checkout", "purchase")]
    assert funnel == sorted(funnel, reverse=True) and len(set(funnel)) == 5, funnel
    assert funnel[-1] > 0
    # Every purchase event names an order of the same customer.
    orders = dict(Order.objects.values_list("external_id", "customer_id"))
    for customer_id, props in Event.objects.filter(type="purchase").values_list("customer_id", "properties"):
        assert orders[props["order_id"]] == customer_id
    # Anonymous visitors, and visitors who browsed anonymously before they signed up.
    assert Event.objects.filter(customer=None).exclude(anonymous_id="").exists()
    identified = Identity.objects.filter(kind=IdentityKind.ANONYMOUS)
    assert identified.exists()
    early = Event.objects.filter(customer__isnull=False, anonymous_id__in=identified.values("value"))
    assert any(e.occurred_at < e.customer.created_at for e in early.select_related("customer"))


def test_second_run_refuses_and_add_adds(seeded):
    with pytest.raises(CommandError, match="already has 400 customers"):
        call_command("seed", customers=10, stdout=StringIO())
    assert Customer.objects.count() == N
    last_order = Order.objects.order_by("-external_id").values_list("external_id", flat=True).first()
    orders_before = Order.objects.count()
    call_command("seed", customers=60, seed=7, add=True, stdout=StringIO())
    assert Customer.objects.count() == N + 60
    assert Product.objects.count() == 200  # the catalogue is reused by SKU
    added = Order.objects.count() - orders_before
    assert (
        added > 0 and Order.objects.filter(external_id__gt=last_order).count() == added
    )  # numbering continues
    assert Identity.objects.values("kind", "value").distinct().count() == Identity.objects.count()
