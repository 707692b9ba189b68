"""Transaction preparation policies and behavioural features: exact values and bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from ecrm_analytics._validation import AnalyticsInputError
from ecrm_analytics.features import (
    FEATURE_COLUMNS,
    FutureTransactionsWarning,
    customer_features,
    prepare_transactions,
)


def tx():
    return pd.DataFrame({
        "cust": ["a", "a", "a", "a", "b", "c", "c"],
        "when": ["2024-01-01 09:00", "2024-01-01 18:00", "2024-03-01", "2024-03-10",
                 "2024-06-20", "2024-02-01", "2024-05-01"],
        "amount": [10.0, 20.0, 60.0, -15.0, 8.0, 0.0, 40.0],
    })


def prepared():
    return prepare_transactions(tx(), customer_col="cust", time_col="when", amount_col="amount",
                                observation_end="2024-12-31")


def test_features_exact_values():
    f = customer_features(prepared(), "2024-06-30")
    assert list(f.columns) == list(FEATURE_COLUMNS)
    a, b, c = f.loc["a"], f.loc["b"], f.loc["c"]
    assert a["n_orders"] == 3 and a["frequency"] == 1  # two same-day orders merge for frequency
    assert a["recency_days"] == (pd.Timestamp("2024-06-30") - pd.Timestamp("2024-03-01")).days == 121
    assert a["tenure_days"] == pytest.approx(181 - 9 / 24)  # first order at 09:00
    assert a["t_x_days"] == pytest.approx(60 - 9 / 24)
    assert a["revenue_total"] == 75.0  # 90 bought, 15 returned: netted
    assert a["revenue_mean"] == 30.0
    assert a["return_rate"] == pytest.approx(15 / 90)
    assert a["orders_90d"] == 0 and a["orders_365d"] == 3
    assert a["mean_gap_days"] == pytest.approx(60 - 9 / 24)
    assert b["n_orders"] == 1 and b["frequency"] == 0 and np.isnan(b["mean_gap_days"])
    assert b["orders_90d"] == 1 and b["revenue_90d"] == 8.0
    assert c["n_orders"] == 2 and c["revenue_total"] == 40.0  # a free order is still an order
    assert c["revenue_mean"] == 20.0


def test_cutoff_excludes_later_rows():
    f = customer_features(prepared(), "2024-03-01")
    assert f.index.tolist() == ["a", "c"]  # b had not bought yet
    assert f.loc["a", "revenue_total"] == 90.0  # the 10 March return is after the cutoff
    assert f.loc["a", "recency_days"] == 0.0


def test_returns_only_customer_has_no_features():
    t = pd.concat([tx(), pd.DataFrame({"cust": ["z"], "when": ["2024-01-05"], "amount": [-5.0]})])
    p = prepare_transactions(t, customer_col="cust", time_col="when", observation_end="2024-12-31")
    assert "z" not in customer_features(p, "2024-06-30").index
    with pytest.raises(AnalyticsInputError, match="no customer has a purchase"):
        customer_features(p, "2023-12-31")


def test_timezones_are_converted_to_utc():
    t = pd.DataFrame({"customer_id": ["a"], "date": pd.to_datetime(["2024-01-01 01:00"]).tz_localize("Europe/Paris"),
                      "amount": [1.0]})
    p = prepare_transactions(t, observation_end=pd.Timestamp("2024-06-01", tz="UTC"))
    assert p["time"].tolist() == [pd.Timestamp("2024-01-01 00:00")]


def test_mixed_currencies_refused_or_converted():
    t = tx().assign(cur=["EUR", "EUR", "USD", "USD", "EUR", "EUR", "EUR"])
    kw = {"customer_col": "cust", "time_col": "when", "currency_col": "cur", "observation_end": "2024-12-31"}
    with pytest.raises(AnalyticsInputError, match="mixes currencies EUR, USD"):
        prepare_transactions(t, **kw)
    with pytest.raises(AnalyticsInputError, match="no rate for currency USD"):
        prepare_transactions(t, conversion_rates={"EUR": 1.0}, **kw)
    p = prepare_transactions(t, conversion_rates={"EUR": 1.0, "USD": 0.5}, **kw)
    assert p["amount"].tolist() == [10.0, 20.0, 30.0, -7.5, 8.0, 0.0, 40.0]  # sorted by customer, time
    one = prepare_transactions(t.assign(cur="USD"), **kw)  # a single currency needs no table
    assert one["amount"].sum() == tx()["amount"].sum()


def test_future_dated_rows_refused_or_dropped_with_count():
    kw = {"customer_col": "cust", "time_col": "when", "observation_end": "2024-04-30"}
    with pytest.raises(AnalyticsInputError, match="2 row.s. dated after the observation end"):
        prepare_transactions(tx(), **kw)
    with pytest.warns(FutureTransactionsWarning, match="dropped 2 transactions row"):
        p = prepare_transactions(tx(), on_future="drop", **kw)
    assert len(p) == 5
    # default observation end is now: historical data passes without a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prepare_transactions(tx(), customer_col="cust", time_col="when")


def test_bad_input():
    kw = {"customer_col": "cust", "time_col": "when", "observation_end": "2024-12-31"}
    with pytest.raises(AnalyticsInputError, match="empty"):
        prepare_transactions(tx().iloc[:0], **kw)
    with pytest.raises(AnalyticsInputError, match="missing column"):
        prepare_transactions(tx().drop(columns="amount"), **kw)
    with pytest.raises(AnalyticsInputError, match="'cust' has 1 missing"):
        prepare_transactions(tx().assign(cust=[None, "a", "a", "a", "b", "c", "c"]), **kw)
    with pytest.raises(AnalyticsInputError, match="must be numeric"):
        prepare_transactions(tx().assign(amount="ten"), **kw)
    with pytest.raises(AnalyticsInputError, match="on_future"):
        prepare_transactions(tx(), on_future="ignore", **kw)
    with pytest.warns(FutureTransactionsWarning, match="dropped 7"), \
            pytest.raises(AnalyticsInputError, match="no rows on or before"):
        prepare_transactions(tx(), customer_col="cust", time_col="when", observation_end="2000-01-01",
                             on_future="drop")
