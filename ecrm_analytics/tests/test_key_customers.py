"""Key customers: exact selections with stated thresholds, flags, and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecrm_analytics._validation import AnalyticsInputError
from ecrm_analytics.key_customers import high_potential, high_value_at_risk, key_customer_flags, top_by_value


@pytest.fixture
def preds():
    return pd.DataFrame(
        {
            "clv": [500.0, 300.0, 300.0, 120.0, 80.0, 40.0, 20.0, 10.0, 5.0, 0.0],
            "probability_alive": [0.95, 0.30, 0.85, 0.99, 0.10, 0.90, 0.05, 0.70, 0.60, 0.02],
            "revenue_total": [900.0, 1500.0, 200.0, 100.0, 1200.0, 50.0, 800.0, 30.0, 20.0, 10.0],
        },
        index=pd.Index([f"c{i}" for i in range(10)], name="customer_id"),
    )


def test_top_by_value_n_share_and_value_share(preds):
    top = top_by_value(preds, n=3)
    assert top.index.tolist() == ["c0", "c1", "c2"]  # tie at 300 kept in input order
    assert top["rank"].tolist() == [1, 2, 3]
    assert top["value_share"].tolist() == pytest.approx([500 / 1375, 800 / 1375, 1100 / 1375])
    assert top_by_value(preds, share=0.25).index.tolist() == ["c0", "c1", "c2"]  # ceil(2.5)
    assert len(top_by_value(preds)) == 10


def test_high_potential_thresholds(preds):
    # 80th percentile of clv (numpy linear) = 300: c0, c1, c2 qualify on spend; c1 is unlikely alive
    assert np.quantile(preds["clv"], 0.8) == 300.0
    hp = high_potential(preds)
    assert hp.index.tolist() == ["c0", "c2"]
    assert high_potential(preds, min_probability_alive=0.2).index.tolist() == ["c0", "c1", "c2"]
    assert high_potential(preds, spend_quantile=0.5).index.tolist() == ["c0", "c2", "c3"]


def test_high_value_at_risk_thresholds(preds):
    # 80th percentile of past revenue = 960: c1 (1500), c4 (1200) at p_alive <= 0.5
    assert high_value_at_risk(preds).index.tolist() == ["c1", "c4"]
    got = high_value_at_risk(preds, value_quantile=0.6, max_probability_alive=0.3)
    assert got.index.tolist() == ["c1", "c4", "c6"]
    assert got["rank"].tolist() == [1, 2, 3]


def test_flags_for_every_customer(preds):
    flags = key_customer_flags(preds, top_share=0.2)
    assert flags.index.equals(preds.index)
    assert flags.index[flags["top_value"]].tolist() == ["c0", "c1"]
    assert flags.index[flags["high_potential"]].tolist() == ["c0", "c2"]
    assert flags.index[flags["high_value_at_risk"]].tolist() == ["c1", "c4"]


def test_single_customer(preds):
    one = preds.iloc[:1]
    assert top_by_value(one, n=5).index.tolist() == ["c0"]
    assert high_potential(one).index.tolist() == ["c0"]
    assert high_value_at_risk(one).empty


def test_bad_input(preds):
    with pytest.raises(AnalyticsInputError, match="empty"):
        top_by_value(preds.iloc[:0])
    with pytest.raises(AnalyticsInputError, match="missing column"):
        high_potential(preds.drop(columns="probability_alive"))
    bad = preds.copy()
    bad.loc["c3", "probability_alive"] = 1.5
    with pytest.raises(AnalyticsInputError, match="probabilities in"):
        high_potential(bad)
    bad = preds.copy()
    bad.loc["c3", "clv"] = np.nan
    with pytest.raises(AnalyticsInputError, match="1 missing"):
        top_by_value(bad)
    with pytest.raises(AnalyticsInputError, match="unique customer ids"):
        top_by_value(pd.concat([preds, preds.iloc[:1]]))
    with pytest.raises(AnalyticsInputError, match="not both"):
        top_by_value(preds, n=1, share=0.5)
