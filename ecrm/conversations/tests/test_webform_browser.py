"""The web form embedded on a shop page of another origin, in real Chromium: the iframe loads (no
X-Frame-Options refusal), an empty submit shows field errors inside the frame and stores nothing, a
filled one (after the minimum fill time) shows the thank-you text and opens the conversation."""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.cache import cache

from ecrm.conversations.channels.webform.services import do_save_webform
from ecrm.conversations.models import Conversation, Message
from ecrm.conversations.services import create_inbox
from ecrm.core.demo import ensure_demo_users
from ecrm.core.models import Team

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs an event loop
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip
SHOP_PORT = 18401  # this part's own port: the shop is a real server on another origin than the CRM


@contextmanager
def shop_server(html: str):
    """A stand-in shop: one static page on its own origin (http://127.0.0.1:18401)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the http.server API)
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", SHOP_PORT), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{SHOP_PORT}/contact.html"
    finally:
        server.shutdown()
        server.server_close()


def test_a_visitor_sends_the_embedded_form_from_the_shop(live_server):
    from playwright.sync_api import sync_playwright

    cache.clear()
    users = {u.username: u for u in ensure_demo_users()}
    inbox = create_inbox(actor=users["admin"], name="Shop forms", kind="webform",
                         team=Team.objects.get(name="Service CN"), config={"min_fill_seconds": 1})  # fmt: skip
    do_save_webform(
        actor=users["manager"], inbox=inbox, name="Contact us", slug="contact",
        success_message="Thank you, we will write back today.",
        fields=[{"name": "name", "label": "Your name", "type": "text", "required": True},
                {"name": "email", "label": "Email", "type": "email", "required": True},
                {"name": "message", "label": "Message", "type": "textarea", "required": True}],
    )  # fmt: skip
    snippet = (f'<iframe src="{live_server.url}/connect/f/contact/" title="Contact us" '
               'style="width:100%;min-height:520px;border:0"></iframe>')  # fmt: skip
    shop_html = f"<!doctype html><html><body><h1>Tea shop</h1>{snippet}</body></html>"

    with shop_server(shop_html) as shop_url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        page.goto(shop_url)
        frame = page.frame_locator("iframe[title='Contact us']")
        frame.get_by_role("button", name="Send").click()
        frame.locator("#err-name").wait_for()
        assert frame.locator(".error").count() == 3
        assert not Conversation.objects.exists()

        frame.get_by_label("Your name").fill("王小明")
        frame.get_by_label("Email").fill("xiaoming@example.com")
        frame.get_by_label("Message").fill('Where is my order? <script>alert("x")</script>')
        page.wait_for_timeout(1100)  # the form's minimum fill time
        frame.get_by_role("button", name="Send").click()
        frame.locator("#public-message").wait_for()
        assert frame.locator("#public-message").inner_text() == "Thank you, we will write back today."
        browser.close()

    conv = Conversation.objects.get()
    assert conv.customer.identities.get().value == "xiaoming@example.com" and conv.team.name == "Service CN"
    assert Message.objects.get().body_text.endswith(
        'Message:\n  Where is my order? <script>alert("x")</script>'
    )
