"""The analytics dashboards in a real browser (Debian Chromium via Playwright) against a live server,
after a model run on the seeded demo shop: every chart draws a canvas, the pages raise no JavaScript
error, the pivot drills down by clicking, and the 360 page shows the scores. With ECRM_SCREENSHOTS
set, saves a screenshot of each dashboard to docs/img/analytics-<name>.png."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from ecrm.analytics.models import CustomerScore, RunStatus
from ecrm.analytics.services import run_analytics
from ecrm.core.demo import DEMO_PASSWORD, ensure_demo_users

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs an event loop
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip
IMG = Path(settings.BASE_DIR) / "docs" / "img"
# page -> number of charts it must draw
DASHBOARDS = {"dashboard": 1, "rfm": 2, "clv": 1, "churn": 1, "clusters": 1, "cohorts": 1, "rules": 1, "olap": 1,
              "runs": 0}  # fmt: skip
PATHS = {"dashboard": "/analytics/", "olap": "/analytics/pivot/"}


@pytest.fixture
def seeded_run(transactional_db, settings, tmp_path):
    settings.VAR_DIR = tmp_path  # the run writes the pivot's Parquet files there
    ensure_demo_users()
    call_command("seed", customers=300, verbosity=0)
    run = run_analytics()
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run


def test_dashboards_draw_their_charts_without_errors(live_server, seeded_run):
    sync_api = pytest.importorskip("playwright.sync_api")
    shots = bool(os.environ.get("ECRM_SCREENSHOTS"))
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        # live_server is a WSGI server: the console's live-update socket (/ws/live/, served by the ASGI
        # app in production) cannot connect there, which is not an error of these pages.
        page.on("console", lambda msg: errors.append(msg.text)
                if msg.type == "error" and "/ws/live/" not in msg.text else None)  # fmt: skip

        page.goto(f"{live_server.url}/login/")
        page.fill("input[name=username]", "analyst")
        page.fill("input[name=password]", DEMO_PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")

        for name, n_charts in DASHBOARDS.items():
            page.goto(live_server.url + PATHS.get(name, f"/analytics/{name}/"))
            page.wait_for_load_state("networkidle")
            assert page.locator(f"text=Current run #{seeded_run.pk}").count() == 1, name
            if n_charts:
                page.wait_for_selector("[data-chart] canvas")
                assert page.locator("[data-chart] canvas").count() == n_charts, name
                # drawn, not just created: the canvas has a size
                box = page.locator("[data-chart] canvas").first.bounding_box()
                assert box and box["width"] > 200 and box["height"] > 200, name
            assert errors == [], (name, errors)
            if shots:
                IMG.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(IMG / f"analytics-{name}.png"), full_page=True)

        # The pivot drills down from years to quarters by clicking a year.
        page.goto(f"{live_server.url}/analytics/pivot/")
        page.locator("table.pivot a.drill").first.click()
        page.wait_for_load_state("networkidle")
        assert page.locator("table.pivot th", has_text="quarter").count() == 1
        assert page.locator("a.roll-up").count() == 1

        # Filtering the churn list swaps the rows in place (htmx) and keeps the URL shareable.
        page.goto(f"{live_server.url}/analytics/churn/")
        page.select_option("select[name=churn_band]", "high")
        page.wait_for_url("**churn_band=high**")
        high = CustomerScore.objects.filter(run=seeded_run, churn_band="high").count()
        assert page.locator("table.churn-list tbody tr").count() == min(high, 50)

        # The 360 page shows the scores of a scored customer.
        score = (
            CustomerScore.objects.filter(run=seeded_run).exclude(clv_12m=None).order_by("-clv_12m").first()
        )
        page.goto(f"{live_server.url}/customers/{score.customer_id}/")
        assert page.locator("section.customer-scores").count() == 1
        assert page.locator("section.customer-scores", has_text=f"{score.clv_12m} CNY").count() == 1
        if shots:
            page.locator("section.customer-scores").screenshot(
                path=str(IMG / "analytics-customer-scores.png")
            )
        # The run button queues a run; the progress partial polls and reloads the page when it is done.
        page.goto(f"{live_server.url}/analytics/runs/")
        page.click("text=Run models now")
        page.wait_for_selector(f"text=Current run #{seeded_run.pk + 1}", timeout=90_000)
        assert page.locator("table.runs tbody tr").count() == 2
        assert errors == [], errors
        browser.close()
