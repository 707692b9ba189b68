"""The stage panel in a real browser (Debian Chromium via Playwright, zh locale): an agent hands a
complaint to the warehouse with a note from the ticket page; the warehouse agent sees it at their
stage with the handoff in the history and passes it on to finance."""

from __future__ import annotations

import re

import pytest

from ecrm.core.demo import DEMO_PASSWORD
from ecrm.core.models import User
from ecrm.service.demo import seed_ticket_flows
from ecrm.service.flows.models import TicketFlowState
from ecrm.service.services import do_create_ticket

from . import factories as f

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

def sign_in(browser, url: str, username: str):
    page = browser.new_page(viewport={"width": 1360, "height": 900}, locale="zh-CN")
    page.set_default_timeout(10_000)
    page.goto(f"{url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_selector(".topbar")
    return page


def test_handing_a_complaint_on_from_the_ticket_page(live_server, chromium):
    seed_ticket_flows()
    li = User.objects.get(username="agent_li")
    ticket = do_create_ticket(actor=li, customer=f.customer(), subject="花瓶破损", type="complaint")

    page = sign_in(chromium, live_server.url, "agent_li")
    page.goto(f"{live_server.url}/service/{ticket.pk}/")
    assert page.locator("#flow-panel [data-stage]").get_attribute("data-stage") == "investigating"
    step = page.locator('form.flow-step[data-to="warehouse_check"]')
    step.locator("input[name=note]").fill("请检查包裹 SO-88")
    step.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"/service/$"))  # now the warehouse's: back to Li's list
    assert TicketFlowState.objects.get(ticket=ticket).stage.key == "warehouse_check"

    wu = sign_in(chromium, live_server.url, "warehouse_wu")
    wu.goto(f"{live_server.url}/service/{ticket.pk}/")
    assert wu.locator("#flow-panel [data-stage]").get_attribute("data-stage") == "warehouse_check"
    assert "请检查包裹 SO-88" in wu.locator(".flow-history").inner_text()
    step = wu.locator('form.flow-step[data-to="refund"]')
    step.locator("input[name=note]").fill("运输途中压坏")
    step.locator("button[type=submit]").click()
    wu.wait_for_url(re.compile(r"/service/$"))
    assert TicketFlowState.objects.get(ticket=ticket).stage.key == "refund"
