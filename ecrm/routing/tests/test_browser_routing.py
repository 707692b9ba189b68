"""Routing in a real browser (Debian Chromium, zh locale; elements found by attributes, never by
English text): an agent switches herself online in the header, customer chats arrive and one is
routed to her; the manager's live dashboard shows her load and the waiting count, and updates by
itself when another chat arrives; the agent sees why the chat came to her."""

from __future__ import annotations

import pytest

from ecrm.core.demo import DEMO_PASSWORD, ensure_demo_users
from ecrm.routing.models import AgentProfile, Assignment

from . import factories as f

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _off_loop(fn, *args):
    """Run a write in another thread: Playwright's event loop runs in this one, and the services'
    live-update publishing (async_to_sync) refuses to run next to it."""
    import threading

    from django.db import connections

    out = []

    def run():
        try:
            out.append(fn(*args))
        finally:
            connections.close_all()

    t = threading.Thread(target=run)
    t.start()
    t.join(timeout=60)
    return out[0]


def _login(browser, url: str, username: str):
    page = browser.new_page(viewport={"width": 1360, "height": 900}, locale="zh-CN")
    page.set_default_timeout(15_000)
    page.goto(f"{url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_selector(".topbar")
    return page


def test_presence_switch_routing_and_live_dashboard(live_server, chromium):
    users = {u.username: u for u in ensure_demo_users()}
    li = users["agent_li"]
    f.profile(li, skills={"lang:zh": 5}, capacity={"chat": 1}, presence="offline")

    agent = _login(chromium, live_server.url, "agent_li")
    # the switch is loaded by htmx; its change trigger is wired when the swap settles (htmx-added goes)
    agent.wait_for_selector("#presence-switch[data-presence=offline]:not(.htmx-added):not(.htmx-settling)")
    agent.wait_for_timeout(100)
    agent.select_option("#presence-switch select[name=presence]", "online")
    agent.wait_for_selector("#presence-switch[data-presence=online]")
    assert AgentProfile.objects.get(user=li).presence == "online"

    first = _off_loop(f.incoming, "你好，我的茶叶还没到。")  # routed at once: she has one free chat slot
    _off_loop(f.incoming, "请问发票怎么开？")  # waits: her slot is taken
    assert Assignment.objects.get().agent_id == li.pk

    manager = _login(chromium, live_server.url, "manager")
    manager.goto(f"{live_server.url}/routing/")
    row = manager.locator(f"#routing-agents tr[data-agent='{li.pk}']")
    assert row.get_attribute("data-presence") == "online"
    assert row.locator("[data-channel=chat]").get_attribute("data-load") == "1"
    waiting = manager.locator("#routing-queues tr[data-queue=none] [data-col=waiting]")
    assert waiting.inner_text().strip() == "1"
    _off_loop(f.incoming, "我想退货。")
    manager.wait_for_function(
        "() => document.querySelector('#routing-queues tr[data-queue=none] [data-col=waiting]').textContent.trim() === '2'",
        timeout=15_000,
    )  # the dashboard refreshed itself (htmx, every 5 s)

    agent.goto(f"{live_server.url}/inbox/{first.pk}/")
    panel = agent.locator(".routing-explanation[data-policy=optimal]")
    panel.wait_for()
    assert panel.locator("tr[data-factor=skill]").count() == 1
    assert "zh" in panel.locator(".routing-sentence").inner_text()
    # Let the pages' own requests (the dashboard's 5 s refresh, the conversation's lazy panels) finish
    # before the test database is flushed: a query still running in the server thread holds a table
    # lock in SQLite's shared in-memory database and the flush fails.
    for page in (agent, manager):
        page.wait_for_load_state("networkidle")
        page.close()
