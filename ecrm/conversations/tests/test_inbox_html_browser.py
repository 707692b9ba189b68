"""Hostile customer HTML is inert on the conversation page, checked in real Chromium: no script
runs (even HTML that skipped the sanitiser: the sandboxed frame is the second wall) and no remote
request is made until the agent clicks "Show images". A local HTTP server stands in for the
tracker and counts the requests it gets."""

from __future__ import annotations

import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import Client
from django.urls import reverse

from ecrm.conversations.models import Inbox, Message
from ecrm.conversations.services import Inbound, receive_inbound
from ecrm.core.demo import ensure_demo_users
from ecrm.core.models import Team

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs an event loop
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip
PIXEL = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,"
         b"\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")  # fmt: skip


@pytest.fixture
def tracker():
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/gif")
            self.end_headers()
            self.wfile.write(PIXEL)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()


def wait_for(predicate, seconds=5.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_hostile_html_is_inert_until_show_images(live_server, tracker):
    from playwright.sync_api import sync_playwright

    base, hits = tracker
    users = {u.username: u for u in ensure_demo_users()}
    inbox = Inbox.objects.create(name="CN mail", kind="email", team=Team.objects.get(name="Service CN"))
    hostile = (
        f'<p>Dear shop,<img src="{base}/pixel.gif" alt="tracking pixel"></p>'
        f"<script>fetch('{base}/script-ran');parent.document.title='pwned'</script>"
        f'<img src="x" onerror="fetch(\'{base}/onerror-ran\')">'
        f'<link rel="stylesheet" href="{base}/style.css"><iframe src="{base}/frame"></iframe>'
    )
    result = receive_inbound(Inbound(inbox=inbox, identities=[("email", "x@example.com")], subject="Hostile",
                                     body_html=hostile))  # fmt: skip
    # Store it raw as well, as if the sanitiser had missed everything: the frame alone must hold.
    Message.objects.filter(pk=result.message.pk).update(body_html=hostile)

    client = Client()
    client.force_login(users["agent_li"])
    session = client.cookies["sessionid"].value
    url = live_server.url + reverse("conversations:detail", args=[result.conversation.pk])
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context()
        host = live_server.url.split("//", 1)[1].split(":")[0]
        context.add_cookies([{"name": "sessionid", "value": session, "domain": host, "path": "/"}])
        page = context.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(url)
        frame_el = page.locator("iframe.message-frame")
        assert frame_el.get_attribute("sandbox") == ""  # no allow-scripts, no allow-same-origin
        frame = frame_el.element_handle().content_frame()
        frame.wait_for_load_state()
        assert "Dear shop" in frame.inner_text("body")
        time.sleep(1.0)
        assert hits == []  # nothing remote before the click: no pixel, no script, no css, no frame
        assert page.title() != "pwned" and dialogs == []

        page.get_by_role("button", name="Show images").click()
        assert wait_for(lambda: "/pixel.gif" in hits)
        time.sleep(0.5)
        # images only: scripts, handlers, styles and frames are still blocked
        assert sorted(set(hits)) == ["/pixel.gif"]
        assert page.title() != "pwned"
        browser.close()
