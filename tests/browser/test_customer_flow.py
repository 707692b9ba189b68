"""The customer flow in a real browser (Debian Chromium via Playwright) against a live server:
sign in, find a customer by phone from the top search box, read the 360 page (orders, timeline),
merge a suggested duplicate from the review queue, then unmerge it and see both customers back.
Saves the 360 page screenshot the README shows (docs/img/customer-360.png)."""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from ecrm.commerce.models import OrderStatus, OrderStatusChange
from ecrm.core.demo import DEMO_PASSWORD, ensure_demo_users
from ecrm.customers.duplicates import record_candidate
from ecrm.customers.models import Customer, CustomerStatus, DuplicateCandidate
from ecrm.customers.services import do_set_consent
from ecrm.customers.tests.factories import make_customer, make_event, make_note, make_order

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs an event loop
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
SCREENSHOT = Path(settings.BASE_DIR) / "docs" / "img" / "customer-360.png"


def build_shop():
    """A small, believable shop: a loyal Shanghai customer, her duplicate sign-up, and neighbours."""
    users = {u.username: u for u in ensure_demo_users()}
    agent = users["agent_li"]
    now = timezone.now()
    wang = make_customer(first_name="丽娜", last_name="王", email="lina.wang@example.cn", phone="13812345678",
                         city="Shanghai", country="CN", lifecycle_stage="vip", gender="female", locale="zh-CN",
                         birthday="1991-05-20", tags=["vip", "tea lover"])
    Customer.objects.filter(pk=wang.pk).update(created_at=now - dt.timedelta(days=400),
                                               first_seen_at=now - dt.timedelta(days=400))
    for number, total, days, status in [("SO-240311", "268.00", 120, OrderStatus.COMPLETED),
                                        ("SO-240522", "1299.00", 60, OrderStatus.DELIVERED),
                                        ("SO-240701", "89.90", 21, OrderStatus.DELIVERED),
                                        ("SO-240718", "459.00", 4, OrderStatus.SHIPPED)]:
        order = make_order(wang, number=number, total=total, days_ago=days, status=status, lines=2)
        if status != OrderStatus.PAID:
            OrderStatusChange.objects.create(order=order, from_status="paid", to_status=status,
                                             changed_at=order.placed_at + dt.timedelta(days=1))
    make_event(wang, type="page_view", name="/", days_ago=4.2, properties={"title": "首页 Home"})
    make_event(wang, type="product_view", name="West Lake Longjing 250g", days_ago=4.1, properties={"sku": "TEA-LJ-250", "price": 459})
    make_event(wang, type="add_to_cart", name="West Lake Longjing 250g", days_ago=4.05, properties={"sku": "TEA-LJ-250"})
    make_event(wang, type="checkout", name="SO-240718", days_ago=3.99)
    make_event(wang, type="product_view", name="Celadon tea set", days_ago=0.3, properties={"sku": "SET-CEL-6"})
    make_note(wang, "Prefers SF Express; asked for gift wrapping on the tea set.", actor=agent)
    do_set_consent(customer=wang, purpose="marketing", channel="email", granted=True, source="checkout", actor=None)
    do_set_consent(customer=wang, purpose="marketing", channel="wechat", granted=True, source="mini-program", actor=None)

    twin = make_customer(first_name="丽娜", last_name="王", email="wanglina91@qq.com", phone="+86 139 1234 5678",
                         city="Shanghai", country="CN", lifecycle_stage="customer", tags=["wechat"])
    make_order(twin, number="WX-88017", total="199.00", days_ago=30, status=OrderStatus.COMPLETED)
    make_event(twin, type="page_view", name="/promo/mid-autumn", days_ago=31)
    make_note(twin, "Signed up again through the WeChat mini-program.", actor=agent)

    make_customer(first_name="Oliver", last_name="Smith", email="oliver.smith@example.co.uk", city="London", country="GB")
    make_customer(first_name="Emily", last_name="Chen", email="emily.chen@example.com", city="Vancouver", country="CA")
    candidate = record_candidate(wang.pk, twin.pk, score=0.85, reasons=["same name", "similar phone"])
    return wang, twin, candidate


def state(customer_id):
    c = Customer.objects.get(pk=customer_id)
    return {
        "fields": {f.attname: getattr(c, f.attname) for f in Customer._meta.concrete_fields},
        "orders": sorted(c.orders.values_list("external_id", flat=True)),
        "events": c.events.count(),
        "notes": sorted(c.notes.values_list("body", flat=True)),
        "tags": sorted(c.tags.values_list("name", flat=True)),
        "identities": sorted(c.identities.values_list("kind", "value")),
        "consents": sorted(c.consents.values_list("purpose", "channel", "granted", "source")),
    }


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def test_search_360_merge_and_unmerge(live_server, browser):
    wang, twin, candidate = build_shop()
    before = (state(wang.pk), state(twin.pk))
    page = browser.new_page(viewport={"width": 1360, "height": 900}, locale="en-US")
    page.set_default_timeout(10_000)
    page.on("dialog", lambda dialog: dialog.accept())

    # Sign in through the form.
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "manager")
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_selector(".topbar")

    # Find her by phone, typed the way a colleague reads it off a parcel.
    page.fill(".global-search input[name=q]", "138 1234 5678")
    page.press(".global-search input[name=q]", "Enter")
    page.wait_for_url("**/customers/?q=**")
    rows = page.locator(".customer-table tbody tr")
    assert rows.count() == 1
    assert "王丽娜" in rows.first.inner_text()
    rows.first.locator("a").first.click()

    # The 360 page: figures, recent orders, one timeline.
    page.wait_for_selector("#h-timeline")
    assert page.locator("h1").first.inner_text() == "王丽娜"
    figures = page.locator(".key-figures").inner_text()
    assert "2115.90" in figures  # 268 + 1299 + 89.90 + 459
    assert "528.98" in figures  # average order value
    recent = page.locator(".recent-orders tbody tr")
    assert recent.count() == 4 and "SO-240718" in recent.first.inner_text()
    kinds = page.locator("#timeline li.entry").evaluate_all("els => els.map(e => e.dataset.key.split(':')[0])")
    assert kinds == ["note", "event", "event", "order", "event", "event", "event", "order", "order", "order"]

    # A note added in place lands at the top of the timeline.
    page.fill("textarea[name=body]", "Called to confirm the tea set delivery address.")
    page.click(".note-form button[type=submit]")
    page.wait_for_selector("#timeline li.entry-note.new")
    assert "Called to confirm" in page.locator("#timeline li.entry").first.inner_text()
    page.evaluate("window.scrollTo(0, 0)")
    if os.environ.get("ECRM_SCREENSHOTS"):  # `ECRM_SCREENSHOTS=1 make test` refreshes the docs' pictures
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
    before = (state(wang.pk), state(twin.pk))  # the note belongs to the state the unmerge must restore

    # The review queue suggests her duplicate; merge it.
    page.click("nav.sidenav >> text=Duplicates")
    page.wait_for_selector(f"#candidate-{candidate.pk}")
    assert "similar phone" in page.locator(f"#candidate-{candidate.pk}").inner_text()
    page.locator(f"#candidate-{candidate.pk} >> text=Review").click()
    page.wait_for_selector(".compare-table")
    assert "the profile with more orders survives" in page.content()
    page.click("button.primary:has-text('Merge')")
    page.wait_for_selector(".flash-success")
    assert "Merged" in page.locator(".flash-success").inner_text()
    assert page.url.endswith(f"/customers/{wang.pk}/")
    assert page.locator(".recent-orders tbody tr").count() == 5  # her twin's WeChat order moved over
    assert "WX-88017" in page.locator(".recent-orders").inner_text()
    assert Customer.objects.get(pk=twin.pk).status == CustomerStatus.MERGED
    assert DuplicateCandidate.objects.get(pk=candidate.pk).status == "merged"

    # Unmerge from the merge history, and both customers are back exactly as they were.
    page.click("#h-merges ~ .merge-row button:has-text('Unmerge')")
    page.wait_for_selector(".flash-success")
    assert "separate customer again" in page.locator(".flash-success").inner_text()
    assert page.locator(".recent-orders tbody tr").count() == 4
    assert (state(wang.pk), state(twin.pk)) == before
    page.goto(f"{live_server.url}/customers/{twin.pk}/")
    assert page.locator(".merge-banner").count() == 0
    assert "WX-88017" in page.locator(".recent-orders").inner_text()
    assert Decimal("199.00") == twin.orders.get().total
