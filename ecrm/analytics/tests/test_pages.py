"""Analytics pages: who may see them, what they show, their CSV exports, the run button and progress,
and the scores on the customer 360 page."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.urls import reverse

from ecrm.analytics.models import CustomerScore, ModelRun, RunStatus
from ecrm.analytics.selectors import filter_churn_band, filter_clv_band, filter_rfm_segment
from ecrm.analytics.services import run_analytics
from ecrm.core.models import AuditLog
from ecrm.customers.models import Customer

from .factories import make_shop

pytestmark = pytest.mark.django_db

PAGES = ["dashboard", "rfm", "clv", "churn", "clusters", "cohorts", "rules", "olap", "runs"]
EXPORTS = ["revenue", "rfm_segments", "rfm_grid", "clv_histogram", "top_customers", "churn", "clusters", "cohorts",
           "rules", "also_bought", "olap"]  # fmt: skip


@pytest.fixture
def scored(db):
    make_shop(names=['=HYPERLINK("http://evil")', "+SUM(A1)", "王丽娜"])
    run = run_analytics()
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run


def _csv(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body)))


@pytest.mark.parametrize("who", ["agent_li", "marketer", "nobody"])
def test_people_without_analytics_are_refused_every_page_and_export(scored, login, who):
    client = login(who)
    for name in PAGES:
        assert client.get(reverse(f"analytics:{name}")).status_code == 403, name
    for name in EXPORTS:
        assert client.get(reverse("analytics:export", args=[name])).status_code == 403, name
    assert client.get(reverse("analytics:run_detail", args=[scored.pk])).status_code == 403
    assert client.post(reverse("analytics:run_request")).status_code == 403
    assert ModelRun.objects.count() == 1  # nothing was queued


def test_signed_out_visitors_are_sent_to_sign_in(client, scored):
    response = client.get(reverse("analytics:dashboard"))
    assert response.status_code == 302 and "/login/" in response["Location"]


@pytest.mark.parametrize("who", ["analyst", "manager", "admin"])
def test_analysts_managers_and_admins_see_every_dashboard(scored, login, who, django_assert_max_num_queries):
    client = login(who)
    for name in PAGES:
        with django_assert_max_num_queries(12):
            response = client.get(reverse(f"analytics:{name}"))
        assert response.status_code == 200, name
        assert f"Current run #{scored.pk}".encode() in response.content


def test_each_chart_ships_its_numbers(scored, login):
    client = login("analyst")
    page = client.get(reverse("analytics:dashboard")).content.decode()
    assert 'data-chart="chart-revenue"' in page and 'id="chart-revenue" type="application/json"' in page
    rows = _csv(client.get(reverse("analytics:export", args=["revenue"])))
    assert rows[0] == ["month", "revenue", "orders", "customers", "currency"]
    assert sum(int(r[2]) for r in rows[1:]) == scored.counts["orders"]
    grid = _csv(client.get(reverse("analytics:export", args=["rfm_grid"])))
    assert sum(int(r[2]) for r in grid[1:]) == scored.counts["scored_customers"]
    segments = _csv(client.get(reverse("analytics:export", args=["rfm_segments"])))
    assert sum(int(r[1]) for r in segments[1:]) == scored.counts["scored_customers"]
    hist = _csv(client.get(reverse("analytics:export", args=["clv_histogram"])))
    assert sum(int(r[2]) for r in hist[1:]) == scored.counts["scored_customers"]
    cohorts = _csv(client.get(reverse("analytics:export", args=["cohorts"])))
    assert cohorts[0][:3] == ["cohort", "customers", "month_0"]
    assert sum(int(r[1]) for r in cohorts[1:]) == scored.counts["scored_customers"]
    assert all(float(r[2]) == 1.0 for r in cohorts[1:])  # everyone buys in their first month
    rules = _csv(client.get(reverse("analytics:export", args=["rules"])))
    assert rules[0] == ["antecedent", "consequent", "support", "confidence", "lift", "count"]
    assert ["TEA-1", "CUP-1"] in [r[:2] for r in rules[1:]]


def test_churn_list_export_has_every_scored_customer_with_formula_cells_neutralised(scored, login):
    rows = _csv(login("manager").get(reverse("analytics:export", args=["churn"])))
    header, body = rows[0], rows[1:]
    assert header[:4] == ["customer_id", "name", "email", "rfm_segment"]
    assert len(body) == CustomerScore.objects.filter(run=scored).count() == scored.counts["scored_customers"]
    names = {r[1] for r in body}
    assert '\'=HYPERLINK("http://evil")' in names and "'+SUM(A1)" in names
    assert not any(n.startswith(("=", "+", "-", "@")) for n in names)
    risks = [float(r[9]) for r in body]
    assert risks == sorted(risks, reverse=True)


def test_churn_list_filters_by_segment_band_and_pages(scored, login, django_assert_max_num_queries):
    client = login("analyst")
    seg = CustomerScore.objects.filter(run=scored).values_list("rfm_segment", flat=True).first()
    expected = CustomerScore.objects.filter(run=scored, rfm_segment=seg).count()
    with django_assert_max_num_queries(12):
        response = client.get(reverse("analytics:churn"), {"segment": seg})
    assert response.status_code == 200
    assert response.content.decode().count('<td><a href="/customers/') == min(expected, 50)
    filtered = _csv(client.get(reverse("analytics:export", args=["churn"]), {"segment": seg}))
    assert len(filtered) - 1 == expected and {r[3] for r in filtered[1:]} == {seg}
    partial = client.get(reverse("analytics:churn"), {"churn_band": "high"}, HTTP_HX_REQUEST="true")
    assert b"<html" not in partial.content
    high = CustomerScore.objects.filter(run=scored, churn_band="high").count()
    assert partial.content.decode().count('<td><a href="/customers/') == min(high, 50)
    bad = client.get(reverse("analytics:churn"), {"churn_band": "extreme"})
    assert bad.status_code == 422 and b"must be one of low, medium, high" in bad.content


def test_the_run_button_queues_a_run_that_then_runs_and_shows_its_progress(
    scored, login, cast, django_capture_on_commit_callbacks
):
    client = login("analyst")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("analytics:run_request"), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    run = ModelRun.objects.exclude(pk=scored.pk).get()
    assert run.triggered_by == cast["analyst"] and run.trigger == "console"
    assert run.status in (RunStatus.SUCCEEDED, RunStatus.REJECTED) and run.progress == 100
    assert AuditLog.objects.filter(action="analytics.run_requested", object_id=str(run.pk)).exists()
    progress = client.get(reverse("analytics:run_progress", args=[run.pk]), HTTP_HX_REQUEST="true")
    assert progress["HX-Refresh"] == "true" and b"100%" in progress.content


def test_a_second_run_is_refused_while_one_is_queued(scored, login):
    queued = ModelRun.objects.create(status=RunStatus.QUEUED)
    client = login("manager")
    response = client.post(reverse("analytics:run_request"), follow=True)
    assert f"Run #{queued.pk} is already queued".encode() in response.content
    assert ModelRun.objects.count() == 2
    progress = client.get(reverse("analytics:run_progress", args=[queued.pk]), HTTP_HX_REQUEST="true")
    assert b'hx-trigger="every 2s"' in progress.content and "HX-Refresh" not in progress


def test_a_future_observation_end_is_refused(scored, login):
    response = login("manager").post(
        reverse("analytics:run_request"), {"observation_end": "2999-01-01"}, follow=True
    )
    assert b"cannot be in the future" in response.content
    assert ModelRun.objects.count() == 1


def test_runs_page_lists_parameters_metrics_and_status(scored, login):
    failed = ModelRun.objects.create(
        status=RunStatus.FAILED, error="Orders are in several currencies (CNY: 3, USD: 1)."
    )
    page = login("analyst").get(reverse("analytics:runs")).content.decode()
    bg = scored.parameters["bgnbd"]
    assert f"{bg['r']:.3f}, {bg['alpha']:.3f}, {bg['a']:.3f}, {bg['b']:.3f}" in page
    assert "Orders are in several currencies (CNY: 3, USD: 1)." in page
    assert f'href="/analytics/runs/{failed.pk}/"' in page
    detail = login("analyst").get(reverse("analytics:run_detail", args=[scored.pk])).content.decode()
    assert '"observation_end"' in detail and "bgnbd" in detail


def test_agents_see_scores_on_the_customer_page_and_no_run_says_so(scored, login):
    score = CustomerScore.objects.filter(run=scored).exclude(churn_risk=None).first()
    page = login("agent_li").get(reverse("customers:detail", args=[score.customer_id])).content.decode()
    assert "Predictive scores" in page
    assert score.rfm_segment.replace("'", "&#x27;") in page
    assert f"{score.clv_12m} CNY" in page
    assert f"run #{scored.pk}" in page
    for reason in score.reasons_display:
        assert reason in page
    unscored = Customer.objects.create(display_name="No orders")
    page = login("agent_li").get(reverse("customers:detail", args=[unscored.pk])).content.decode()
    assert "Not scored: this customer had no revenue order" in page
    assert login("nobody").get(reverse("customers:detail", args=[score.customer_id])).status_code == 403


def test_list_filters_select_customers_by_current_scores(scored):
    qs = Customer.objects.all()
    seg = CustomerScore.objects.filter(run=scored).values_list("rfm_segment", flat=True).first()
    assert set(filter_rfm_segment(qs, seg).values_list("pk", flat=True)) == set(
        CustomerScore.objects.filter(run=scored, rfm_segment=seg).values_list("customer_id", flat=True)
    )
    assert (
        filter_churn_band(qs, "high").count()
        == CustomerScore.objects.filter(run=scored, churn_band="high").count()
    )
    top = filter_clv_band(qs, "top").count()
    assert top == CustomerScore.objects.filter(run=scored, clv_band="top").count()
    assert 0 < top <= 0.1 * scored.counts["scored_customers"] + 1


def test_home_shows_the_high_churn_figure_to_analysts_only(scored, login):
    from django.core.cache import cache

    cache.delete("home:analytics_high_churn")
    high = CustomerScore.objects.filter(run=scored, churn_band="high").count()
    page = login("analyst").get("/").content.decode()
    assert "Customers at high churn risk" in page and f"{high:,}" in page
    assert "Customers at high churn risk" not in login("agent_li").get("/").content.decode()


def test_without_a_churn_model_the_list_still_lists_customers_and_says_why(db, login, settings):
    settings.ECRM_ANALYTICS = {"DISABLED": ("churn",)}
    make_shop()
    run = run_analytics()
    assert run.status == RunStatus.SUCCEEDED, run.error
    page = login("manager").get(reverse("analytics:churn")).content.decode()
    assert "The churn model is not available: switched off" in page
    assert page.count('<td><a href="/customers/') == min(50, run.counts["scored_customers"])
    assert "No churn model in this run." in page


def test_customer_list_shows_score_filters_and_applies_them(scored, login):
    seg = CustomerScore.objects.filter(run=scored).values_list("rfm_segment", flat=True).first()
    expected = set(CustomerScore.objects.filter(run=scored, rfm_segment=seg).values_list("customer_id", flat=True))
    client = login("manager")
    page = client.get(reverse("customers:list")).content.decode()
    assert '<select name="rfm_segment">' in page and '<select name="churn_band">' in page
    assert '<select name="clv_band">' in page
    page = client.get(reverse("customers:list"), {"rfm_segment": seg}).content.decode()
    shown = {int(pk) for pk in re.findall(r'href="/customers/(\d+)/"', page)}
    assert shown == expected
    bad = client.get(reverse("customers:list"), {"churn_band": "extreme"}).content.decode()
    assert "must be one of low, medium, high" in bad
