"""The analytics job: what it stores, what it leaves out (and counts), and how it refuses bad data."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from ecrm.analytics.models import CustomerScore, ModelRun, RunResult, RunStatus
from ecrm.analytics.services import purge_old_scores, run_analytics
from ecrm.commerce.models import Order, Return
from ecrm.customers.models import Customer

from .factories import add_order, make_shop

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(db):
    return make_shop()


def test_a_run_scores_every_customer_with_a_revenue_order(shop):
    run = run_analytics()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.is_current
    buyers = set(Order.objects.values_list("customer_id", flat=True))
    scores = CustomerScore.objects.filter(run=run)
    assert set(scores.values_list("customer_id", flat=True)) == buyers
    assert run.counts["scored_customers"] == len(buyers) == run.counts["customers"]
    assert run.counts["orders"] == Order.objects.count()
    s = scores.exclude(probability_alive=None).first()
    assert 0 <= s.probability_alive <= 1
    assert s.expected_purchases_12m >= 0
    assert isinstance(s.clv_12m, Decimal) and s.clv_12m >= 0 and s.currency == "CNY"
    assert s.rfm_segment in {"champions", "loyal", "potential loyalists", "new", "promising", "need attention",
                             "about to sleep", "at risk", "can't lose them", "hibernating", "lost"}  # fmt: skip
    assert 1 <= s.r_score <= 5 and 1 <= s.f_score <= 5 and 1 <= s.m_score <= 5
    # Fitted parameters, holdout metrics and durations are recorded.
    assert set(run.parameters["bgnbd"]) == {"r", "alpha", "a", "b"}
    assert set(run.parameters["gamma_gamma"]) == {"p", "q", "gamma"}
    assert run.metrics["clv"]["customers"] > 0 and run.metrics["clv"]["mae"] >= 0
    assert run.calibration_end == run.observation_end - dt.timedelta(days=90)
    assert {"extract", "rfm", "clv", "store", "total"} <= set(run.durations)
    assert run.steps["rfm"]["status"] == "ok" and run.steps["clv"]["status"] == "ok"
    # Optional models ran on this shop, or say exactly why not.
    for step in ("churn", "clusters", "rules", "cohorts"):
        assert run.steps[step]["status"] in {"ok", "failed"}
        if run.steps[step]["status"] == "failed":
            assert run.steps[step]["message"]
    assert run.steps["rules"]["status"] == "ok"
    rules = RunResult.objects.get(run=run, name="rules").data
    assert any({r["antecedent"], r["consequent"]} == {"TEA-1", "CUP-1"} for r in rules["rules"])
    revenue = RunResult.objects.get(run=run, name="revenue").data
    assert round(sum(r["revenue"] for r in revenue), 2) == float(
        sum(Order.objects.values_list("total", flat=True))
    )
    assert sum(r["orders"] for r in revenue) == Order.objects.count()


def test_excluded_orders_are_counted_and_never_scored(shop):
    lonely = [
        Customer.objects.create(display_name=f"Only {s}")
        for s in ("cancelled", "pending", "refunded", "future")
    ]
    add_order(lonely[0], days_ago=3, status="cancelled")
    add_order(lonely[1], days_ago=3, status="pending")
    add_order(lonely[2], days_ago=3, status="refunded")
    add_order(lonely[3], days_ago=-2)  # placed two days from now
    Order.objects.create(external_id="GUEST-1", customer=None, status="paid", placed_at=timezone.now(),
                         total=Decimal("9.00"))  # fmt: skip
    run = run_analytics()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.counts["orders_not_revenue"] == 3
    assert run.counts["orders_future_dated"] == 1
    assert run.counts["orders_without_customer"] == 1
    assert not CustomerScore.objects.filter(customer__in=lonely).exists()


def test_refunds_are_netted_into_their_order_and_a_fully_returned_order_is_no_purchase(shop):
    buyer = Customer.objects.create(display_name="Returner")
    kept = add_order(buyer, days_ago=40, total="100.00")
    gone = add_order(buyer, days_ago=20, total="60.00")
    Return.objects.create(order=kept, refund_amount=Decimal("30.00"), status="refunded")
    Return.objects.create(order=gone, refund_amount=Decimal("60.00"), status="refunded")
    Return.objects.create(order=kept, refund_amount=Decimal("50.00"), status="requested")  # not refunded yet
    run = run_analytics()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.counts["orders_partly_refunded"] == 1
    assert run.counts["orders_fully_returned"] == 1
    score = CustomerScore.objects.get(run=run, customer=buyer)
    assert score.frequency == 0  # the returned order is not a repeat purchase
    assert score.monetary_value == pytest.approx(70.0)  # 100 - 30 refunded


def test_mixed_currencies_are_refused_with_the_breakdown_and_the_current_scores_stay(shop, settings):
    first = run_analytics()
    add_order(shop[0], days_ago=2, currency="USD")
    run = run_analytics()
    assert run.status == RunStatus.FAILED
    assert "several currencies (CNY: " in run.error and "USD: 1" in run.error
    assert "REPORTING_CURRENCY" in run.error
    first.refresh_from_db()
    assert first.is_current and not run.is_current
    assert CustomerScore.objects.filter(run=first).count() == first.counts["scored_customers"]

    settings.ECRM_ANALYTICS = {"REPORTING_CURRENCY": "CNY", "CONVERSION_RATES": {"CNY": 1.0, "USD": 7.0}}
    converted = run_analytics()
    assert converted.status in (RunStatus.SUCCEEDED, RunStatus.REJECTED), converted.error
    assert converted.currency == "CNY"
    revenue = RunResult.objects.get(run=converted, name="revenue").data
    expected = float(sum(Order.objects.filter(currency="CNY").values_list("total", flat=True))) + 7 * 50
    assert round(sum(r["revenue"] for r in revenue), 2) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: None, "There are no revenue orders with a customer"),
        (
            lambda: add_order(Customer.objects.create(display_name="Solo"), days_ago=5),
            "BG/NBD needs at least 20",
        ),
        (
            lambda: [
                add_order(Customer.objects.create(display_name=f"One {i}"), days_ago=i + 1) for i in range(60)
            ],
            "BG/NBD needs at least 20 customers with a repeat purchase",
        ),
    ],
    ids=["empty", "single-customer", "all-one-time-buyers"],
)
def test_data_that_cannot_support_the_models_fails_the_run_with_a_clear_message(db, build, message):
    build()
    run = run_analytics()
    assert run.status == RunStatus.FAILED
    assert message in run.error
    assert not run.is_current
    assert CustomerScore.objects.count() == 0
    assert run.finished_at is not None and "total" in run.durations


def test_a_run_worse_than_the_current_one_is_recorded_but_does_not_replace_it(shop):
    good = run_analytics()
    assert good.status == RunStatus.SUCCEEDED
    # Make the current run look much better than anything achievable on this data.
    good.metrics = {**good.metrics, "clv": {**good.metrics["clv"], "mae": good.metrics["clv"]["mae"] / 10}}
    good.save(update_fields=["metrics"])
    worse = run_analytics()
    assert worse.status == RunStatus.REJECTED
    assert "worse than the current run" in worse.error
    good.refresh_from_db()
    assert good.is_current and not worse.is_current
    assert not CustomerScore.objects.filter(run=worse).exists()
    assert CustomerScore.objects.filter(run=good).count() == good.counts["scored_customers"]


def test_a_new_good_run_replaces_the_current_one_and_old_scores_are_purged(shop, settings):
    settings.ECRM_ANALYTICS = {"KEEP_SCORED_RUNS": 1, "DISABLED": ("clusters", "churn")}
    first = run_analytics()
    second = run_analytics()
    assert second.status == RunStatus.SUCCEEDED, second.error
    first.refresh_from_db()
    assert second.is_current and not first.is_current
    assert ModelRun.objects.filter(is_current=True).count() == 1
    assert not CustomerScore.objects.filter(run=first).exists()
    assert CustomerScore.objects.filter(run=second).count() == second.counts["scored_customers"]
    assert second.steps["clusters"] == {
        "status": "not available",
        "message": "switched off in ECRM_ANALYTICS['DISABLED']",
    }
    assert CustomerScore.objects.filter(run=second).exclude(cluster=None).count() == 0
    assert purge_old_scores() == 0


def test_observation_end_in_the_past_leaves_later_orders_out(shop):
    end = timezone.localdate() - dt.timedelta(days=60)
    run = run_analytics(observation_end=end)
    assert run.status == RunStatus.SUCCEEDED, run.error
    tz_end = dt.datetime.combine(
        end + dt.timedelta(days=1), dt.time(), tzinfo=timezone.get_default_timezone()
    )
    assert run.counts["orders"] == Order.objects.filter(placed_at__lt=tz_end).count()
    assert run.counts["orders_after_observation_end"] == Order.objects.filter(placed_at__gte=tz_end).count()
    assert run.observation_end == end


def test_the_nightly_task_runs_unless_a_run_is_going(shop):
    from ecrm.analytics.tasks import nightly_analytics

    busy = ModelRun.objects.create(status=RunStatus.RUNNING)
    nightly_analytics.call_local()
    assert ModelRun.objects.count() == 1
    busy.status = RunStatus.FAILED
    busy.save(update_fields=["status"])
    nightly_analytics.call_local()
    run = ModelRun.objects.exclude(pk=busy.pk).get()
    assert run.trigger == "schedule" and run.status == RunStatus.SUCCEEDED and run.is_current


def test_customers_who_all_buy_alike_give_a_clear_failure_not_nan_scores(db):
    """Identical Poisson buyers who never drop out and always spend the same: the models are not
    identified: the fit runs off to parameters near infinity (which the library refuses) or gives
    NaN predictions (which the job refuses). The run says so and stores nothing."""
    import numpy as np

    rng = np.random.default_rng(5)
    people = Customer.objects.bulk_create([Customer(display_name=f"Same {i}") for i in range(400)])
    now = timezone.now()
    orders = []
    for i, person in enumerate(people):
        for day in rng.uniform(1, 700, rng.poisson(5) + 1):
            orders.append(Order(external_id=f"S-{i}-{day:.5f}", customer=person, status="completed",
                                placed_at=now - dt.timedelta(days=float(day)), total=Decimal("123.45")))  # fmt: skip
    Order.objects.bulk_create(orders)
    run = run_analytics()
    assert run.status == RunStatus.FAILED
    # the library refuses the runaway fit itself; the job's own finiteness check is the backstop
    assert "no heterogeneity between customers" in run.error or "identify the model" in run.error
    assert not CustomerScore.objects.exists()
