"""The portal in a real browser (Debian Chromium via Playwright) against a live server: a customer asks
for a sign-in link, opens it from the mail, signs in, sees her order with its tracking number, opens a
request about it, and searches the help center in Chinese. A second use of the link is refused."""

from __future__ import annotations

import os
import re

import pytest
from django.core import mail

from ecrm.customers.tests.factories import make_customer, make_order
from ecrm.knowledge.tests.factories import published_article
from ecrm.service.models import Ticket

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs an event loop
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_customer_signs_in_by_link_and_helps_herself(live_server, chromium):
    wang = make_customer(first_name="丽娜", last_name="王", email="lina.wang@example.cn")
    order = make_order(wang, number="SO-240718", status="shipped", total="459.00", lines=1)
    order.tracking_number = "SF1400012345"
    order.save(update_fields=["tracking_number"])
    published_article(
        "shipping-zh", language="zh-hans", title="发货时间说明", body="订单付款后，我们会在48小时内发货。"
    )

    page = chromium.new_context(locale="zh-CN").new_page()
    page.goto(f"{live_server.url}/portal/orders/")
    assert page.url.startswith(f"{live_server.url}/portal/login/")
    page.fill("input[name=email]", "Lina.Wang@example.cn")
    page.click("button[type=submit]")
    page.wait_for_selector("#login-sent")

    assert len(mail.outbox) == 1
    link = re.search(r"http://\S+/portal/login/[A-Za-z0-9_-]+/", mail.outbox[0].body).group(0)
    page.goto(link)
    page.click("#redeem")
    page.wait_for_url(f"{live_server.url}/portal/")
    assert "SO-240718" in page.inner_text(".portal-orders")

    page.click("text=SO-240718")
    assert page.inner_text("#tracking") == "SF1400012345"

    page.click(f"a[href$='?order={order.pk}']")  # "Ask a question about this order", in Chinese here
    page.fill("input[name=subject]", "还没收到")
    page.fill("textarea[name=body]", "我的订单什么时候到？")
    page.click("#new-ticket button[type=submit]")
    page.wait_for_selector("#ticket-reply")
    ticket = Ticket.objects.get(customer=wang)
    assert (ticket.subject, ticket.order_id, ticket.source) == ("还没收到", order.pk, "portal")

    page.goto(f"{live_server.url}/portal/help/?q=我的订单什么时候发货")
    assert "发货时间说明" in page.inner_text(".help-results")
    page.click(".help-results a")
    assert page.inner_text("h1") == "发货时间说明"

    # the link is single use: another browser cannot sign in with it
    other = chromium.new_context().new_page()
    other.goto(link)
    assert "already been used" in other.inner_text("#link-refused")
