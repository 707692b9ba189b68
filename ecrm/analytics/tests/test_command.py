"""`manage.py run_analytics`: prints the run's JSON summary; exit code 1 when the run failed."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from ecrm.analytics.models import ModelRun, RunStatus
from ecrm.customers.models import Customer

from .factories import add_order, make_shop

pytestmark = pytest.mark.django_db


def test_prints_parameters_metrics_durations_and_counts(db):
    make_shop()
    out = StringIO()
    call_command("run_analytics", stdout=out)
    summary = json.loads(out.getvalue())
    run = ModelRun.objects.get()
    assert run.trigger == "cli" and run.status == RunStatus.SUCCEEDED
    assert summary["run"] == run.pk and summary["status"] == "succeeded" and summary["current"] is True
    assert summary["parameters"]["bgnbd"] == run.parameters["bgnbd"]
    assert summary["parameters"]["gamma_gamma"] == run.parameters["gamma_gamma"]
    assert summary["holdout_metrics"]["clv"]["mae"] == run.metrics["clv"]["mae"]
    assert summary["durations_seconds"]["total"] == run.durations["total"] > 0
    assert summary["counts"]["scored_customers"] == run.counts["scored_customers"] > 0


def test_a_failed_run_prints_its_summary_and_exits_non_zero(db):
    make_shop(customers=40)
    add_order(Customer.objects.first(), days_ago=1, currency="USD")
    out = StringIO()
    with pytest.raises(CommandError, match="failed: Orders are in several currencies"):
        call_command("run_analytics", stdout=out)
    assert json.loads(out.getvalue())["status"] == "failed"


def test_bad_date_and_a_running_run_are_refused(db):
    with pytest.raises(CommandError, match="use YYYY-MM-DD"):
        call_command("run_analytics", "--observation-end", "01/02/2026")
    ModelRun.objects.create(status=RunStatus.RUNNING)
    with pytest.raises(CommandError, match="is running; use --force"):
        call_command("run_analytics")
    assert ModelRun.objects.count() == 1
