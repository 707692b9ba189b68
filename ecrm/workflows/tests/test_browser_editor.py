"""The rule editor in a real browser (Debian Chromium via Playwright) against a live server: an admin
builds a rule from form rows (a field choice re-renders its row over htmx, rows and groups are added
without typing JSON), runs a dry run, saves, and the rule works. Elements are found by name and id,
never by their (translated) text."""

from __future__ import annotations

import pytest

from ecrm.core.demo import DEMO_PASSWORD, ensure_demo_users
from ecrm.service.services import do_create_ticket
from ecrm.workflows.models import Rule

from .factories import customer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HTMX_IDLE = "() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')"


def rerendered(page, select: str, value: str) -> None:
    """Choose in a select that re-renders its row over htmx, and wait until the new row is in place."""
    with page.expect_response(lambda r: "/workflows/editor/" in r.url):
        page.select_option(select, value)
    page.wait_for_function(HTMX_IDLE)


def test_build_dry_run_and_save_a_rule_in_the_editor(live_server, chromium):
    users = {u.username: u for u in ensure_demo_users()}
    buyer = customer()
    urgent = do_create_ticket(actor=users["agent_li"], customer=buyer, subject="Broken", priority="urgent")
    do_create_ticket(actor=users["agent_li"], customer=buyer, subject="Calm", priority="low")

    page = chromium.new_page(viewport={"width": 1360, "height": 1000}, locale="zh-CN")
    page.set_default_timeout(10_000)
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_selector(".topbar")
    page.goto(f"{live_server.url}/workflows/new/")
    page.fill("#rule-name", "Urgent to service")
    page.select_option("#triggers", ["ticket.created"])
    # choosing the field re-renders the row: the value becomes a select of priorities
    rerendered(page, "select[name=c-0-field]", "ticket.priority")
    assert page.locator("select[name=c-0-value] option[value=urgent]").count() == 1
    rerendered(page, "select[name=c-0-op]", "in")
    page.fill("input[name=c-0-value]", "high, urgent")
    # a second row, added over htmx
    page.click("#conditions button[data-action=add-condition]")
    page.wait_for_selector("select[name=c-1-field]")
    # htmx binds the new row's controls while it swaps and settles: a choice made before that sends
    # nothing (seen once in CI as a 10 s wait for the re-render)
    page.wait_for_function(HTMX_IDLE)
    rerendered(page, "select[name=c-1-field]", "ticket.subject")
    rerendered(page, "select[name=c-1-op]", "contains")
    page.fill("input[name=c-1-value]", "broken")
    # the default action row is "notify a team"
    page.select_option("select[name=a-0-team]", "Service CN")
    page.fill("input[name=a-0-message]", "Urgent {{ ticket.reference }}")
    page.click("#dry-run-button")
    page.wait_for_selector("#dry-run-result")
    assert page.locator("#dry-run-result p[data-matched]").count() == 1, page.inner_html("#dry-run")
    result = page.wait_for_selector("#dry-run-result p[data-matched]")
    assert result.get_attribute("data-matched") == "1" and result.get_attribute("data-checked") == "2"
    assert page.locator(f"[data-subject='ticket:{urgent.pk}']").count() == 1
    page.click("#save-rule")
    page.wait_for_selector("#rules")
    rule = Rule.objects.get()
    assert rule.conditions == {"all": [
        {"field": "ticket.priority", "op": "in", "value": ["high", "urgent"]},
        {"field": "ticket.subject", "op": "contains", "value": "broken"},
    ]}  # fmt: skip
    assert rule.actions == [
        {"type": "notify_team", "team": "Service CN", "message": "Urgent {{ ticket.reference }}"}
    ]
    assert page.locator(f"tr[data-rule='{rule.pk}']").count() == 1
