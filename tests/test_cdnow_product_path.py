"""The CDNOW validation through the product: the cohort sample's transactions written as an orders
CSV, imported with the real CSV importer (`manage.py import orders`), the analytics job run with the
observation end of Fader, Hardie & Lee (2005) (1997-09-30, the end of week 39), and the fitted
parameters read back from the recorded ModelRun.

Time in weeks and same-day purchases merged, as in the papers (the shop's setting TIME_UNIT="W";
MERGE_PERIOD="D"); spend averaged over repeat purchases. Published: BG/NBD r=0.243, alpha=4.414,
a=0.793, b=2.426; Gamma-Gamma p=6.25, q=3.74, gamma=15.44.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from io import StringIO

import pytest
from django.core.management import call_command

from ecrm.analytics.models import CustomerScore, ModelRun, RunStatus
from ecrm.commerce.models import Order

lifetimes = pytest.importorskip("lifetimes")
from ecrm_analytics.datasets import load_cdnow_sample_transactions  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "gamma": 15.44}


def sig3(x: float) -> str:
    return f"{x:.3g}"


@pytest.fixture
def cdnow_orders_csv(tmp_path):
    """One order per CDNOW line (several lines can share a customer and a day, as in the file)."""
    tx = load_cdnow_sample_transactions()
    path = tmp_path / "cdnow_orders.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["order_id", "customer_id", "placed_at", "total", "currency", "status"])
        for i, row in enumerate(tx.itertuples(index=False), start=1):
            w.writerow([f"CDNOW-{i:05d}", f"cdnow-{row.customer_id}", row.date.strftime("%Y-%m-%d"),
                        f"{row.amount:.2f}", "USD", "completed"])  # fmt: skip
    return path, tx


def test_cdnow_published_parameters_through_import_and_run(cdnow_orders_csv, settings, tmp_path):
    settings.VAR_DIR = tmp_path  # the run writes the pivot's Parquet files there
    settings.ECRM_ANALYTICS = {"TIME_UNIT": "W", "MERGE_PERIOD": "D"}
    path, tx = cdnow_orders_csv
    call_command("import", "orders", str(path), "--no-progress", stdout=StringIO(), stderr=StringIO())
    assert Order.objects.count() == 6919
    assert Order.objects.values("customer").distinct().count() == 2357

    out = StringIO()
    call_command("run_analytics", "--observation-end", "1997-09-30", stdout=out)
    summary = json.loads(out.getvalue())

    run = ModelRun.objects.get()
    assert summary["run"] == run.pk
    assert run.status == RunStatus.SUCCEEDED and run.is_current
    assert run.observation_end == dt.date(1997, 9, 30)
    assert run.time_unit == "W" and run.currency == "USD"
    bg, gg = run.parameters["bgnbd"], run.parameters["gamma_gamma"]
    assert {k: sig3(bg[k]) for k in BGNBD} == {k: sig3(v) for k, v in BGNBD.items()}
    assert {k: sig3(gg[k]) for k in GAMMA_GAMMA} == {k: sig3(v) for k, v in GAMMA_GAMMA.items()}
    assert summary["parameters"]["bgnbd"] == bg  # the CLI prints what was recorded

    # The window: lines after week 39 are outside it and counted, nothing is future-dated.
    after = int((tx["date"] > "1997-09-30").sum())
    assert run.counts["orders"] == 6919 - after
    assert run.counts["orders_after_observation_end"] == after
    assert run.counts["orders_future_dated"] == 0
    assert run.counts["customers"] == 2357
    # FHL (2005): 2,457 repeat transactions in weeks 1-39 by 946 repeat buyers.
    assert run.parameters["bgnbd_fit"]["n_repeat_customers"] == 946
    assert run.parameters["gamma_gamma_fit"]["n_repeat_customers"] == 946
    assert CustomerScore.objects.filter(run=run).count() == 2357
    assert sum(CustomerScore.objects.filter(run=run).values_list("frequency", flat=True)) == 2457
    assert run.metrics["clv"]["customers"] > 0 and run.metrics["clv"]["mae"] > 0
    assert set(summary["durations_seconds"]) >= {"extract", "rfm", "clv", "store", "total"}
