"""The JavaScript tracker in real Chromium: a shop page on another origin loads the snippet from the
live server, and the exact events land in the database with the visitor's anonymous id, then on the
customer after identify."""

from __future__ import annotations

import http.server
import os
import threading
import time

import pytest

from ecrm.core.services import do_create_api_key
from ecrm.customers.models import Customer, Identity
from ecrm.ingest.models import Event

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip

SHOP_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Knife shop</title></head>
<body><h1>Chef knife</h1>
<script>
window.ecrm=window.ecrm||[];["page","track","productView","addToCart","checkout","identify","reset"].forEach(function(m){ecrm[m]=ecrm[m]||function(){ecrm.push([m,[].slice.call(arguments)])}});
ecrm.page();
ecrm.productView({sku: "KN-01", name: "Chef knife", price: "159.00", currency: "CNY"});
</script>
<script async src="%(crm)s/static/ecrm/js/tracker.js" data-key="%(key)s" data-endpoint="%(crm)s/api/v1/t"
        data-flush-ms="100"></script>
</body></html>"""


@pytest.fixture
def shop_server(live_server):
    """The shop's page on its own origin (another port), so the tracker really posts cross-origin."""
    _, key = do_create_api_key(name="shop tracker", scope="track", actor=None)
    html = (SHOP_PAGE % {"crm": live_server.url, "key": key}).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception:  # noqa: BLE001 - in-memory SQLite may be busy with the server thread's write
            value = None
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting for the tracker's events")


@pytest.fixture
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    if not os.path.exists("/usr/bin/chromium"):
        pytest.skip("Chromium is not installed at /usr/bin/chromium")
    with playwright.sync_playwright() as p:
        instance = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def test_tracker_sends_page_product_view_identify_and_beacon(browser, shop_server, live_server):
    context = browser.new_context()
    page = context.new_page()
    console_errors: list[str] = []
    page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
    page.goto(shop_server + "/products/kn-01")

    # 1. page view and product view, queued before the script loaded, arrive anonymously.
    wait_for(lambda: Event.objects.count() == 2)
    cookie = next(c for c in context.cookies(shop_server) if c["name"] == "ecrm_aid")
    aid = cookie["value"]
    assert cookie["sameSite"] == "Lax"
    assert cookie["expires"] - time.time() > 364 * 86400
    assert page.evaluate("ecrm.anonymousId()") == aid
    events = list(Event.objects.order_by("id"))
    assert [(e.type, e.anonymous_id, e.customer_id, e.source) for e in events] == [
        ("page", aid, None, "tracker"),
        ("product_view", aid, None, "tracker"),
    ]
    assert events[0].name == "Knife shop"
    assert events[0].context["page"]["url"] == shop_server + "/products/kn-01"
    assert events[1].properties == {
        "sku": "KN-01",
        "name": "Chef knife",
        "price": "159.00",
        "currency": "CNY",
    }
    assert len({e.event_id for e in events}) == 2 and all(len(e.event_id) == 36 for e in events)

    # 2. identify: the customer is created, the anonymous id linked, past events moved.
    page.evaluate('ecrm.identify("shop-user-1", {email: "Mei@Example.com", first_name: "Mei"})')
    customer = wait_for(lambda: Customer.objects.filter(email="mei@example.com").first())
    wait_for(lambda: Event.objects.filter(customer=customer).count() == 2)
    assert customer.first_name == "Mei"
    assert set(Identity.objects.filter(customer=customer).values_list("kind", "value")) == {
        ("external", "shop-user-1"), ("email", "mei@example.com"), ("anonymous", aid),
    }  # fmt: skip

    # 3. add to cart, then leave the page: the queue goes out with sendBeacon on pagehide.
    page.evaluate("window.ecrm.config.flushMs = 60000")
    page.evaluate('ecrm.addToCart({sku: "KN-01", price: "159.00"}, 2)')
    time.sleep(0.3)
    assert Event.objects.filter(type="add_to_cart").count() == 0  # still queued
    page.goto("about:blank")
    cart = wait_for(lambda: Event.objects.filter(type="add_to_cart").first())
    assert (cart.anonymous_id, cart.customer_id) == (aid, customer.pk)
    assert cart.properties == {"sku": "KN-01", "price": "159.00", "quantity": 2}

    assert list(Event.objects.order_by("id").values_list("type", "customer_id")) == [
        ("page", customer.pk), ("product_view", customer.pk), ("add_to_cart", customer.pk),
    ]  # fmt: skip
    assert console_errors == []
    context.close()
