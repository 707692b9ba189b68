"""The service flow in a real browser (Debian Chromium via Playwright) against a live server: an agent
opens a ticket from the conversation page's panel, answers publicly and solves it; the customer opens
the CSAT link from the mail with no login, answers, and the agent sees the score on the ticket."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from ecrm.core.demo import DEMO_PASSWORD, ensure_demo_users
from ecrm.service.models import SurveyResponse, Ticket

from . import factories as f

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

def test_ticket_from_conversation_to_csat_answer(live_server, chromium, settings):
    settings.ECRM_PUBLIC_URL = live_server.url
    ensure_demo_users()
    customer = f.customer("Wang Fang", "wang@example.com")
    conv = f.conversation(customer, "Service CN", subject="The teapot lid is cracked")

    agent = chromium.new_page(viewport={"width": 1360, "height": 900}, locale="en-US")
    agent.set_default_timeout(10_000)
    agent.goto(f"{live_server.url}/login/")
    agent.fill("input[name=username]", "agent_li")
    agent.fill("input[name=password]", DEMO_PASSWORD)
    agent.click("button[type=submit].primary")
    agent.wait_for_selector(".topbar")

    agent.goto(f"{live_server.url}/inbox/{conv.pk}/")
    form = agent.locator("#ticket-from-conversation")
    if not form.is_visible():
        agent.click("#ticket-panel summary")
    form.locator("select[name=type]").select_option("complaint")
    form.locator("select[name=priority]").select_option("high")
    form.locator("button[type=submit]").click()
    agent.wait_for_url(re.compile(r"/service/\d+/$"))
    ticket = Ticket.objects.get()
    assert (ticket.subject, ticket.type, ticket.priority) == (
        "The teapot lid is cracked",
        "complaint",
        "high",
    )
    assert ticket.reference in agent.inner_text("h1")

    agent.fill("#comment-form textarea[name=body]", "Sorry! A new lid is on its way.")
    agent.click("#comment-form button[type=submit]")
    agent.wait_for_selector("#comments article.comment-out")
    agent.select_option("#ticket-update select[name=status]", "solved")
    agent.click("#ticket-update button[type=submit]")
    agent.wait_for_selector("text=Saved.")
    ticket.refresh_from_db()
    assert ticket.status == "solved" and ticket.first_response_at is not None

    # the customer's mail has the signed link; no login needed
    link = re.search(r"https?://\S+", mail.outbox[-1].body).group(0)
    assert link.startswith(live_server.url)
    customer_page = chromium.new_context(locale="en-US").new_page()
    customer_page.goto(link)
    customer_page.check("input[name=score][value='5']")
    customer_page.fill("textarea[name=comment]", "Quick and kind.")
    customer_page.click("#survey-form button[type=submit]")
    customer_page.wait_for_selector("#thanks")
    assert SurveyResponse.objects.get().score == 5

    agent.reload()
    assert "5 / 5" in agent.inner_text("body") and "Quick and kind." in agent.inner_text("body")
