"""The analytics API: runs and a customer's scores, for read keys and permitted console users."""

from __future__ import annotations

import pytest
from django.test import Client

from ecrm.analytics.models import CustomerScore, RunStatus
from ecrm.analytics.services import run_analytics
from ecrm.customers.models import Customer

from .factories import make_shop

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(db):
    make_shop()
    result = run_analytics()
    assert result.status == RunStatus.SUCCEEDED, result.error
    return result


def test_read_key_reads_runs_and_scores(run, api_read):
    current = api_read.get("/api/v1/analytics/runs/current")
    assert current.status_code == 200
    body = current.json()
    assert body["run"] == run.pk and body["parameters"]["bgnbd"] == run.parameters["bgnbd"]
    assert [r["run"] for r in api_read.get("/api/v1/analytics/runs").json()] == [run.pk]
    score = CustomerScore.objects.filter(run=run).exclude(churn_risk=None).first()
    got = api_read.get(f"/api/v1/analytics/customers/{score.customer_id}/scores").json()
    assert got["rfm"]["segment"] == score.rfm_segment
    assert got["clv_12m"] == str(score.clv_12m) and got["currency"] == "CNY"
    assert got["churn_risk"] == pytest.approx(score.churn_risk)
    assert [r["feature"] for r in got["churn_reasons"]] == [f for f, _ in score.churn_reasons]
    assert got["model_version"] == run.version and got["run"] == run.pk


def test_unscored_and_unknown_customers_are_404(run, api_read):
    unscored = Customer.objects.create(display_name="No orders")
    response = api_read.get(f"/api/v1/analytics/customers/{unscored.pk}/scores")
    assert response.status_code == 404 and response.json()["code"] == "not_scored"
    assert api_read.get("/api/v1/analytics/customers/999999/scores").status_code == 404
    assert api_read.get("/api/v1/analytics/runs/999999").status_code == 404


def test_tracking_keys_anonymous_callers_and_users_without_the_role_are_refused(
    run, api_keys, api_anon, cast
):
    tracking = Client(HTTP_AUTHORIZATION=f"Bearer {api_keys['track']}")
    assert tracking.get("/api/v1/analytics/runs").status_code == 403
    assert api_anon.get("/api/v1/analytics/runs").status_code == 401
    agent = Client()
    agent.force_login(cast["agent_li"])
    assert agent.get("/api/v1/analytics/runs").status_code == 403
    score = CustomerScore.objects.filter(run=run).first()
    # an agent may see a customer's scores, as on the 360 page
    assert agent.get(f"/api/v1/analytics/customers/{score.customer_id}/scores").status_code == 200
    nobody = Client()
    nobody.force_login(cast["nobody"])
    assert nobody.get(f"/api/v1/analytics/customers/{score.customer_id}/scores").status_code == 403
