"""Cohorts: exact retention and revenue matrices on a hand-built example, and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecrm_analytics._validation import AnalyticsInputError
from ecrm_analytics.cohorts import cohort_tables
from ecrm_analytics.features import FutureTransactionsWarning

NAN = np.nan


def example() -> pd.DataFrame:
    rows = [
        # January cohort: ann, bob, cid
        ("ann", "2024-01-03", 100.0), ("ann", "2024-02-10", 50.0), ("ann", "2024-04-01", 30.0),
        ("bob", "2024-01-31", 20.0), ("bob", "2024-02-01", 10.0), ("bob", "2024-02-15", -10.0),  # return
        ("cid", "2024-01-15", 40.0), ("cid", "2024-01-20", 60.0),
        # February cohort: dan; his March return does not make him active
        ("dan", "2024-02-28", 80.0), ("dan", "2024-03-05", -80.0), ("dan", "2024-04-30", 25.0),
        # April cohort: eve
        ("eve", "2024-04-02", 15.0),
        # returns only: no cohort
        ("zed", "2024-03-03", -5.0),
    ]
    return pd.DataFrame(rows, columns=["customer_id", "date", "amount"])


def test_exact_matrices():
    t = cohort_tables(example(), observation_end="2024-04-30")
    assert [str(p) for p in t.sizes.index] == ["2024-01", "2024-02", "2024-04"]
    assert t.sizes.tolist() == [3, 1, 1]
    assert t.active.columns.tolist() == [0, 1, 2, 3]
    np.testing.assert_array_equal(t.active.to_numpy(), [
        [3, 2, 0, 1],
        [1, 0, 1, NAN],
        [1, NAN, NAN, NAN],
    ])
    np.testing.assert_allclose(t.retention.to_numpy(), [
        [1.0, 2 / 3, 0.0, 1 / 3],
        [1.0, 0.0, 1.0, NAN],
        [1.0, NAN, NAN, NAN],
    ])
    np.testing.assert_allclose(t.revenue.to_numpy(), [
        [220.0, 50.0, 0.0, 30.0],   # Jan: 100+20+40+60; Feb: 50+10-10; Mar: none; Apr: 30
        [80.0, -80.0, 25.0, NAN],  # dan: the return nets March revenue below zero
        [15.0, NAN, NAN, NAN],
    ])
    np.testing.assert_allclose(t.revenue_per_customer.to_numpy()[0], [220 / 3, 50 / 3, 0.0, 10.0])
    np.testing.assert_allclose(t.cumulative_revenue_per_customer.to_numpy()[1], [80.0, 0.0, 25.0, NAN])
    assert t.retention.index.name == "cohort" and t.retention.columns.name == "months_since_acquisition"


def test_default_observation_end_is_the_latest_transaction():
    t = cohort_tables(example().iloc[:8])  # January cohort only, last row 2024-04-01
    assert t.retention.columns.tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(t.retention.to_numpy(), [[1.0, 2 / 3, 0.0, 1 / 3]])


def test_all_one_time_buyers_and_single_customer():
    once = pd.DataFrame({"customer_id": ["a", "b", "c"], "date": ["2024-01-01", "2024-02-01", "2024-02-09"],
                         "amount": [1.0, 2.0, 3.0]})
    t = cohort_tables(once, observation_end="2024-03-15")
    np.testing.assert_allclose(t.retention.to_numpy(), [[1.0, 0.0, 0.0], [1.0, 0.0, NAN]])
    single = cohort_tables(once.iloc[:1], observation_end="2024-01-31")
    assert single.retention.to_numpy().tolist() == [[1.0]]


def test_currencies_and_future_dates():
    tx = example().assign(currency="EUR")
    tx.loc[0, "currency"] = "GBP"
    with pytest.raises(AnalyticsInputError, match="mixes currencies EUR, GBP"):
        cohort_tables(tx, currency_col="currency", observation_end="2024-04-30")
    t = cohort_tables(tx, currency_col="currency", conversion_rates={"EUR": 1.0, "GBP": 1.2},
                      observation_end="2024-04-30")
    assert t.revenue.iloc[0, 0] == pytest.approx(220.0 + 20.0)  # ann's 100 GBP = 120 EUR
    with pytest.raises(AnalyticsInputError, match="2 row.s. dated after the observation end"):
        cohort_tables(example(), observation_end="2024-04-01")
    with pytest.warns(FutureTransactionsWarning, match="dropped 2"):
        t = cohort_tables(example(), observation_end="2024-04-01", on_future="drop")
    assert t.sizes.tolist() == [3, 1]


def test_bad_input():
    with pytest.raises(AnalyticsInputError, match="empty"):
        cohort_tables(example().iloc[:0])
    with pytest.raises(AnalyticsInputError, match="only returns"):
        cohort_tables(example().iloc[-1:], observation_end="2024-04-30")
    with pytest.raises(AnalyticsInputError, match="not dates"):
        cohort_tables(example().assign(date="soon"))
    with pytest.raises(AnalyticsInputError, match="missing column"):
        cohort_tables(example().drop(columns="amount"))
