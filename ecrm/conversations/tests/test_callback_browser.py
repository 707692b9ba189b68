"""The callback reminder in a real browser: an agent has the callback list open; when the reminder
job runs ten minutes before her callback, the page says so at once, over the console's WebSocket
(the ASGI live server, as in production), without a reload."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connections
from django.utils import timezone

from ecrm.conversations.channels.callback.services import do_request_callback, send_due_reminders
from ecrm.conversations.models import CallbackRequest
from ecrm.conversations.services import create_inbox
from ecrm.core.demo import DEMO_PASSWORD, ensure_demo_users
from ecrm.core.models import Team
from tests.browser.conftest import asgi_live_server  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def in_worker(fn):
    """Run `fn` in its own thread, as the web request or the task worker would: Playwright's sync API
    keeps an event loop in the test's thread, where the channel layer's sync publish may not run."""
    shared = connections["default"]
    result: list = []

    def job() -> None:
        adopt = shared.allow_thread_sharing  # an in-memory SQLite test database lives on that connection
        if adopt:
            connections["default"] = shared
        try:
            result.append(fn())
        finally:
            if not adopt:
                connections.close_all()

    worker = threading.Thread(target=job)
    worker.start()
    worker.join(timeout=30)
    return result[0]


def test_the_agent_sees_the_reminder_live_on_the_callback_list(asgi_live_server, chromium):  # noqa: F811
    users = {u.username: u for u in ensure_demo_users()}
    li = users["agent_li"]
    inbox = create_inbox(actor=users["admin"], name="Callbacks", kind="callback",
                         team=Team.objects.get(name="Service CN"))  # fmt: skip
    callback = in_worker(lambda: do_request_callback(inbox=inbox, phone="13800138000", name="王小明",
                                                     requested_for=timezone.now() + dt.timedelta(minutes=30)))  # fmt: skip
    CallbackRequest.objects.filter(pk=callback.pk).update(assignee=li)

    page = chromium.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{asgi_live_server.url}/login/")
    page.fill("input[name=username]", li.username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_selector(".topbar")
    with page.expect_websocket(lambda ws: ws.url.endswith("/ws/live/")):
        page.goto(f"{asgi_live_server.url}/inbox/callbacks/")
    page.wait_for_timeout(500)  # the consumer joins user.<id> right after the handshake
    assert page.locator("#callback-reminder").is_hidden()

    due = timezone.now() + dt.timedelta(minutes=21)
    assert in_worker(lambda: send_due_reminders(due)) == 1  # the periodic job, ten minutes before
    page.locator("#callback-reminder").wait_for(state="visible")
    assert page.locator("#callback-reminder").inner_text() == "Call soon: 王小明 · +8613800138000"
    assert "due-soon" in (
        page.locator(f'#callbacks tr[data-id="{callback.pk}"]').get_attribute("class") or ""
    )
    assert errors == []
