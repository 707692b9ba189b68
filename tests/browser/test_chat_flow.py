"""Live chat end to end, in two browser contexts against the real ASGI server (uvicorn): a visitor on
the demo shop page chats from the widget; an agent signed in to the console opens the conversation and
answers; the visitor sees the answer live (and the agent's typing, and that the agent read it); the
agent sees the visitor's next message live; the chat and what the visitor viewed before it are on the
customer's 360 timeline."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.urls import reverse
from django.utils import timezone

from ecrm.conversations.models import Conversation, Inbox, Message
from ecrm.core.demo import DEMO_PASSWORD, ensure_demo_users
from ecrm.core.models import Team
from ecrm.customers.models import Identity
from ecrm.ingest.models import Event

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VISITOR_AID = "6b0f7c52-1d3e-4a8b-9c11-2f5e8d4a7b90"


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting for the database")


def sign_in(page, base_url, username):
    page.goto(f"{base_url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_selector(".topbar")


def test_a_visitor_chats_an_agent_answers_live_and_the_chat_is_on_the_timeline(asgi_live_server, chromium):
    base = asgi_live_server.url
    li = {u.username: u for u in ensure_demo_users()}["agent_li"]
    inbox = Inbox.objects.create(
        name="Shop chat", kind="chat", team=Team.objects.get(name="Service CN"),
        config={"title": "Tea House chat", "greeting": "Hello! How can we help?"},
    )  # fmt: skip
    Event.objects.create(anonymous_id=VISITOR_AID, type="product_view", name="West Lake Longjing 250g",
                         occurred_at=timezone.now() - dt.timedelta(minutes=5))  # fmt: skip
    errors: list[str] = []

    # The agent signs in and has the inbox open: she is online for the chat of her team.
    agent_ctx = chromium.new_context(viewport={"width": 1360, "height": 900}, locale="en-US")
    agent = agent_ctx.new_page()
    agent.set_default_timeout(10_000)
    agent.on("pageerror", lambda exc: errors.append(f"agent: {exc}"))
    sign_in(agent, base, "agent_li")
    agent.goto(base + reverse("conversations:inbox"))
    # every console page of a user who may see conversations carries the presence script (base.html)
    assert agent.locator("script[src*='ecrm/chat/agent.js']").count() == 1
    agent.wait_for_selector("html[data-chat-presence=online]")

    # A visitor who browsed the shop (the tracker's cookie) opens the chat on the shop page.
    visitor_ctx = chromium.new_context(viewport={"width": 1200, "height": 800}, locale="en-US")
    visitor_ctx.add_cookies([{"name": "ecrm_aid", "value": VISITOR_AID, "url": base}])
    visitor = visitor_ctx.new_page()
    visitor.set_default_timeout(10_000)
    visitor.on("pageerror", lambda exc: errors.append(f"visitor: {exc}"))
    visitor.goto(f"{base}/connect/chat/demo-shop/?inbox={inbox.pk}")
    widget = visitor.locator("#ecrm-chat")
    visitor.wait_for_selector("#ecrm-chat[data-online=true]", state="attached")
    widget.locator(".launcher").click()
    assert widget.locator(".panel header strong").inner_text() == "Tea House chat"
    assert widget.locator(".greeting").inner_text() == "Hello! How can we help?"
    widget.locator(".prechat input[name=name]").fill("丽娜")
    widget.locator(".prechat input[name=email]").fill("lina.wang@example.cn")
    widget.locator(".prechat button[type=submit]").click()
    visitor.wait_for_selector("#ecrm-chat[data-connected=true]", state="attached")
    widget.locator(".composer textarea").fill("Is the Longjing in stock?")
    widget.locator(".composer textarea").press("Enter")
    widget.locator(".msg-in[data-id]").first.wait_for()
    assert widget.locator(".msg-in[data-id] .text").all_inner_texts() == ["Is the Longjing in stock?"]

    conv = wait_for(lambda: Conversation.objects.select_related("customer").first())
    assert (conv.channel, conv.visitor_id, conv.contact) == ("chat", VISITOR_AID, "lina.wang@example.cn")
    assert Identity.objects.filter(customer=conv.customer, kind="anonymous", value=VISITOR_AID).exists()

    # The agent opens the conversation, which marks it read: the visitor sees "Read".
    agent.goto(base + reverse("conversations:detail", args=[conv.pk]))
    agent.wait_for_selector("#messages article.message-in")
    assert "Is the Longjing in stock?" in agent.locator("#messages").inner_text()
    widget.locator(".msg-in.is-read").first.wait_for()

    # The agent types (the visitor sees it) and answers; the answer arrives live, no reload.
    agent.locator("#reply-form textarea[name=body]").press_sequentially("Yes", delay=30)
    widget.locator(".typing:not([hidden])").wait_for()
    agent.locator("#reply-form textarea[name=body]").fill("Yes — 12 tins left, it ships today.")
    agent.locator("#reply-form button[type=submit]").click()
    widget.locator(".msg-out").first.wait_for()
    assert widget.locator(".msg-out .text").all_inner_texts() == ["Yes — 12 tins left, it ships today."]
    assert widget.locator(".msg-out .author").inner_text() == li.first_name  # her first name, not her login

    # The visitor answers back; it appears on the agent's page live.
    widget.locator(".composer textarea").fill("Great, I'll order two.")
    widget.locator(".composer textarea").press("Enter")
    agent.locator("#messages article.message-in", has_text="Great, I'll order two.").wait_for()

    # A reload of the shop page restores the conversation from the signed session.
    visitor.reload()
    visitor.wait_for_selector("#ecrm-chat[data-connected=true]", state="attached")
    visitor.locator("#ecrm-chat .launcher").click()
    assert visitor.locator("#ecrm-chat .msg .text").all_inner_texts() == [
        "Is the Longjing in stock?", "Yes — 12 tins left, it ships today.", "Great, I'll order two."]  # fmt: skip

    # The chat, and what she viewed before it, are on the customer's 360 timeline.
    agent.goto(base + reverse("customers:detail", args=[conv.customer_id]))
    agent.wait_for_selector("#timeline")
    timeline = agent.locator("#timeline").inner_text()
    assert "Is the Longjing in stock?" in timeline and "12 tins left" in timeline
    assert "West Lake Longjing 250g" in timeline
    assert Message.objects.filter(conversation=conv).count() == 3
    assert errors == []
    agent_ctx.close()
    visitor_ctx.close()


def test_with_no_agent_online_the_widget_takes_an_offline_message(asgi_live_server, chromium):
    base = asgi_live_server.url
    ensure_demo_users()
    inbox = Inbox.objects.create(name="Shop chat", kind="chat", team=Team.objects.get(name="Service EN"))
    page = chromium.new_page(locale="en-US")
    page.set_default_timeout(10_000)
    page.goto(f"{base}/connect/chat/demo-shop/?inbox={inbox.pk}")
    page.wait_for_selector("#ecrm-chat[data-online=false]", state="attached")
    widget = page.locator("#ecrm-chat")
    widget.locator(".launcher").click()
    widget.locator(".offline button[type=submit]").click()
    widget.locator(".offline .form-error", has_text="Please check the highlighted fields.").wait_for()
    invalid = widget.locator(".offline [aria-invalid=true]").evaluate_all("els => els.map(e => e.name)")
    assert sorted(invalid) == ["body", "email"]
    assert Conversation.objects.count() == 0
    widget.locator(".offline input[name=name]").fill("Oliver")
    widget.locator(".offline input[name=email]").fill("oliver.smith@example.co.uk")
    widget.locator(".offline textarea[name=body]").fill("Do you ship to London?")
    widget.locator(".offline button[type=submit]").click()
    widget.locator(".thanks:not([hidden])").wait_for()
    conv = wait_for(lambda: Conversation.objects.select_related("customer").first())
    assert (conv.contact, conv.customer.email, conv.thread_key[:8]) == (
        "oliver.smith@example.co.uk", "oliver.smith@example.co.uk", "offline:")  # fmt: skip
    page.close()
