"""Settings -> Webhooks in a real browser (Debian Chromium, zh locale, so nothing is found by English
text): an admin creates an endpoint with the event picker, copies the secret, sends a test to a real
local receiver, opens the delivery and replays it; the receiver verifies both signatures."""

from __future__ import annotations

import re

import pytest

from ecrm.core.demo import DEMO_PASSWORD, ensure_demo_users
from ecrm.core.tests.http_testserver import LocalServer
from ecrm.webhooks.models import Delivery, Endpoint

from .test_deliveries import verify

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

def test_create_an_endpoint_send_a_test_and_replay_it(live_server, chromium, settings):
    receiver = LocalServer().start()
    settings.ECRM_OUTBOUND_ALLOWLIST = [f"127.0.0.1:{receiver.port}"]
    try:
        ensure_demo_users()
        page = chromium.new_page(viewport={"width": 1360, "height": 900}, locale="zh-CN")
        page.set_default_timeout(10_000)
        page.goto(f"{live_server.url}/login/")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", DEMO_PASSWORD)
        page.click("button[type=submit].primary")
        page.wait_for_selector(".topbar")
        page.click("nav a[href='/webhooks/']")
        page.click("#new-endpoint")
        form = page.locator("#endpoint-form")
        form.locator("input[name=name]").fill("ERP 订单")
        form.locator("input[name=url]").fill(f"{receiver.url}/erp")
        form.locator("input[name=events][value='order.']").check()
        form.locator("input[name=events][value='ticket.created']").check()
        form.locator("button[type=submit]").click()
        secret = page.locator("#secret-value").inner_text().strip()
        ep = Endpoint.objects.get()
        assert (ep.name, ep.events, ep.secret) == ("ERP 订单", ["order.", "ticket.created"], secret)

        page.goto(f"{live_server.url}/webhooks/{ep.pk}/")
        page.click("button[data-action=test]")
        page.wait_for_url(re.compile(r"/webhooks/deliveries/\d+/$"))
        assert page.locator("#delivery-status [data-status]").get_attribute("data-status") == "succeeded"
        page.click("button[data-action=replay]")
        page.wait_for_selector("#delivery-attempts:text('2')")
        d = Delivery.objects.get()
        assert (d.attempts, d.status) == (2, "succeeded")
        first, again = receiver.requests
        assert (
            first.body == again.body and first.headers["X-Ecrm-Delivery"] == again.headers["X-Ecrm-Delivery"]
        )
        assert verify(secret, first.headers, first.body) and verify(secret, again.headers, again.body)
    finally:
        receiver.stop()
