"""Churn/propensity: time split, metrics against sklearn, BG/NBD baseline, SHAP reasons, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from ecrm_analytics._validation import AnalyticsInputError
from ecrm_analytics.churn import PropensityModel, bgnbd_probability_alive, buys_again, reliability_bins
from ecrm_analytics.clv import BetaGeoModel
from ecrm_analytics.features import customer_features, prepare_transactions

START = pd.Timestamp("2022-01-01")
END = pd.Timestamp("2023-12-31")


def simulate(n_customers: int = 1500, seed: int = 0) -> pd.DataFrame:
    """BG/NBD-like shop: heterogeneous purchase rates, dropout after purchases, staggered starts."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_customers):
        rate = rng.gamma(0.8, 1 / 30)  # purchases per day
        p_drop = rng.beta(1.0, 4.0)
        spend = rng.gamma(4.0, 10.0)
        t = rng.uniform(0, 300)
        while t <= (END - START).days:
            rows.append((f"c{c:05d}", START + pd.Timedelta(days=int(t)), round(spend * rng.uniform(0.5, 1.5), 2)))
            if rng.random() < p_drop:
                break
            t += rng.exponential(1 / rate)
    return pd.DataFrame(rows, columns=["customer_id", "date", "amount"])


@pytest.fixture(scope="module")
def tx():
    return simulate()


@pytest.fixture(scope="module")
def fitted(tx):
    model = PropensityModel(horizon_days=90, n_estimators=100)
    return model.fit(tx, train_cutoff="2023-03-01", holdout_cutoff="2023-06-01", observation_end=END)


def test_holdout_metrics_are_exact_and_beat_the_bgnbd_baseline(tx, fitted):
    m = fitted.metrics_
    prepared = prepare_transactions(tx, observation_end=END)
    cut = pd.Timestamp("2023-06-01")
    feats = customer_features(prepared, cut)
    future = prepared[(prepared["time"] > cut) & (prepared["time"] <= cut + pd.Timedelta(days=90))]
    y = buys_again(feats, future).to_numpy()
    p = fitted.predict_features(feats)["probability"].to_numpy()
    assert m["n_holdout"] == len(feats) and m["holdout_positive_rate"] == pytest.approx(y.mean())
    assert m["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2), abs=1e-12)
    # the BG/NBD baseline, recomputed independently with the clv module
    rfm = pd.DataFrame({"frequency": feats["frequency"], "recency": feats["t_x_days"], "T": feats["tenure_days"]})
    p_alive = BetaGeoModel(time_unit="D").fit(rfm).probability_alive(rfm)
    assert m["baseline_auc"] == pytest.approx(roc_auc_score(y, p_alive), abs=1e-9)
    assert m["baseline_brier"] == pytest.approx(brier_score_loss(y, p_alive), abs=1e-9)
    assert m["auc"] > 0.75
    assert m["auc"] > m["baseline_auc"]
    # calibration: without re-weighting the probabilities track the observed rate
    rel = pd.DataFrame(m["reliability"])
    assert rel["count"].sum() == len(y)
    assert m["ece"] < 0.05
    assert abs(p.mean() - y.mean()) < 0.03


def test_reliability_bins_hand_example():
    rel = reliability_bins([0, 0, 1, 1, 1, 0], [0.05, 0.15, 0.35, 0.65, 1.0, 0.95], n_bins=4)
    assert rel["bin_lower"].tolist() == [0.0, 0.25, 0.5, 0.75]
    assert rel["count"].tolist() == [2, 1, 1, 2]
    assert rel["mean_predicted"].tolist() == pytest.approx([0.1, 0.35, 0.65, 0.975])
    assert rel["observed_rate"].tolist() == [0.0, 1.0, 1.0, 0.5]


def test_labels_use_the_window_after_the_cutoff_only():
    tx = pd.DataFrame({
        "customer_id": ["a", "a", "b", "b", "c", "c"],
        "date": pd.to_datetime(["2024-01-01", "2024-01-31", "2024-01-10", "2024-03-01", "2024-01-05", "2024-02-15"]),
        "amount": [10.0, 5.0, 10.0, 5.0, 10.0, -10.0],
    })
    prepared = prepare_transactions(tx, observation_end="2024-12-31")
    model = PropensityModel(horizon_days=30, baseline=None)
    cut = pd.Timestamp("2024-01-31")
    feats = customer_features(prepared, cut)
    y = model._labels(prepared, feats, cut, buys_again)
    # a: purchase on the cutoff day is a feature, not a label; b: day 30 after the cutoff is in
    # the window (cut + 30 days = 2024-03-01); c: a return is not a purchase.
    assert y.to_dict() == {"a": 0, "b": 1, "c": 0}
    assert feats.loc["a", "recency_days"] == 0.0


def test_scores_for_all_customers_with_reasons(tx, fitted):
    scores = fitted.predict(tx, cutoff=END)
    prepared = prepare_transactions(tx, observation_end=END)
    assert scores.index.tolist() == sorted(prepared["customer_id"].unique())
    assert np.allclose(scores["probability"] + scores["churn_risk"], 1.0)
    assert scores["probability"].between(0, 1).all()
    # TreeSHAP contributions sum to the raw log-odds; reason_1 is the most negative one
    feats = customer_features(prepared, END)
    x = fitted._matrix(feats, fit=False)
    contrib = fitted.booster_.predict(x, pred_contrib=True)
    raw = fitted.booster_.predict(x, raw_score=True)
    np.testing.assert_allclose(contrib.sum(axis=1), raw, rtol=1e-9, atol=1e-9)
    reasons = fitted.top_reasons(feats)
    first = reasons[reasons["rank"] == 1].set_index("customer_id")
    i = feats.index.get_loc(first.index[0])
    j = int(np.argmin(contrib[i, :-1]))
    assert first.iloc[0]["feature"] == fitted.feature_names_[j]
    assert first.iloc[0]["contribution"] == pytest.approx(contrib[i, j])
    assert (reasons["contribution"] < 0).all()
    # a long-lapsed customer's top churn reason is about recency / recent activity
    lapsed = feats["recency_days"].idxmax()
    assert scores.loc[lapsed, "reason_1"].split("=")[0] in {"recency_days", "orders_90d", "orders_365d", "revenue_90d"}


def test_fit_is_deterministic_and_save_load_round_trips(tx, fitted, tmp_path):
    again = PropensityModel(horizon_days=90, n_estimators=100).fit(
        tx, train_cutoff="2023-03-01", holdout_cutoff="2023-06-01", observation_end=END)
    assert again.metrics_["auc"] == fitted.metrics_["auc"]
    fitted.save(tmp_path / "m.json")
    loaded = PropensityModel.load(tmp_path / "m.json")
    a = fitted.predict(tx, cutoff=END)
    b = loaded.predict(tx, cutoff=END)
    pd.testing.assert_frame_equal(a, b)
    assert loaded.metrics_["auc"] == fitted.metrics_["auc"]


def test_custom_target_with_attributes(tx):
    customers = sorted(tx["customer_id"].unique())
    rng = np.random.default_rng(1)
    attributes = pd.DataFrame(
        {"country": rng.choice(["FR", "DE"], len(customers)), "newsletter": rng.integers(0, 2, len(customers))},
        index=pd.Index(customers, name="customer_id"),
    )

    def big_spender(features, future):  # spends over 50 in the window
        spent = future.groupby("customer_id")["amount"].sum()
        return (spent.reindex(features.index, fill_value=0) > 50).astype(int)

    model = PropensityModel(horizon_days=120, n_estimators=60, baseline=None).fit(
        tx, train_cutoff="2023-01-01", holdout_cutoff="2023-05-01", observation_end=END,
        attributes=attributes, target=big_spender)
    assert model.feature_names_[-2:] == ["country", "newsletter"]
    assert model.categories_ == {"country": ["DE", "FR"]}
    assert model.metrics_["baseline_auc"] is None
    assert model.metrics_["auc"] > 0.7
    scores = model.predict(tx, cutoff=END, attributes=attributes)
    assert len(scores) == len(customers)


def test_pluggable_baseline(tx):
    model = PropensityModel(horizon_days=90, n_estimators=30, baseline=lambda f: 1.0 / (1.0 + f["recency_days"]))
    model.fit(tx, train_cutoff="2023-03-01", observation_end=END)
    assert model.metrics_["holdout_cutoff"] == "2023-05-30 00:00:00"  # default: train cutoff + horizon
    assert 0.5 < model.metrics_["baseline_auc"] < 1.0


def test_time_split_errors(tx):
    model = PropensityModel(horizon_days=90, baseline=None)
    with pytest.raises(AnalyticsInputError, match="overlap the holdout features"):
        model.fit(tx, train_cutoff="2023-03-01", holdout_cutoff="2023-04-01", observation_end=END)
    with pytest.raises(AnalyticsInputError, match="after the end of the data"):
        model.fit(tx, train_cutoff="2023-06-01", holdout_cutoff="2023-11-01", observation_end=END)
    with pytest.raises(AnalyticsInputError, match="not fitted"):
        model.predict(tx, cutoff=END)


def test_tiny_and_degenerate_data():
    model = PropensityModel(horizon_days=30, baseline=None)
    one = pd.DataFrame({"customer_id": ["a", "a"], "date": ["2024-01-01", "2024-03-01"], "amount": [1.0, 2.0]})
    with pytest.raises(AnalyticsInputError, match="1 customer"):
        model.fit(one, train_cutoff="2024-01-15", observation_end="2024-06-01")
    with pytest.raises(AnalyticsInputError, match="empty"):
        model.fit(one.iloc[:0], train_cutoff="2024-01-15")
    # all one-time buyers: nobody buys again, so no positives
    once = pd.DataFrame({"customer_id": [f"c{i}" for i in range(50)],
                         "date": pd.date_range("2024-01-01", periods=50, freq="D"), "amount": 10.0})
    with pytest.raises(AnalyticsInputError, match="0 positive.s. and 30 negative.s."):
        model.fit(once, train_cutoff="2024-01-30", holdout_cutoff="2024-03-01", observation_end="2024-04-30")


def test_bad_transactions_are_refused(tx):
    model = PropensityModel(horizon_days=90, baseline=None)
    mixed = tx.assign(currency=np.where(np.arange(len(tx)) % 2, "EUR", "USD"))
    with pytest.raises(AnalyticsInputError, match="mixes currencies EUR, USD"):
        model.fit(mixed, train_cutoff="2023-03-01", observation_end=END, currency_col="currency")
    with pytest.raises(AnalyticsInputError, match="dated after the observation end"):
        model.fit(tx, train_cutoff="2023-01-01", holdout_cutoff="2023-04-01", observation_end="2023-08-01")


def test_bgnbd_baseline_function_matches_clv_module(tx):
    from ecrm_analytics.rfm import rfm_summary

    prepared = prepare_transactions(tx, observation_end=END)
    cutoff = pd.Timestamp("2023-06-01")
    feats = customer_features(prepared, cutoff)
    p = bgnbd_probability_alive(prepared, cutoff)
    assert p.index.equals(feats.index)
    one_time = feats["frequency"] == 0
    assert (p[one_time] == 1.0).all()  # BG/NBD: a one-time buyer cannot have dropped out
    assert p[~one_time].between(0, 1).all() and p[~one_time].min() < 0.2
    summary = rfm_summary(prepared[prepared["time"] <= cutoff], "customer_id", "time", observation_end=cutoff)
    expected = BetaGeoModel(time_unit="D").fit(summary).probability_alive(summary)
    np.testing.assert_allclose(p.to_numpy(), expected.to_numpy(), rtol=0, atol=0)


def test_bgnbd_baseline_uses_the_day_grid_for_same_day_orders(tx):
    # Second orders later the same day (clock-time gap of hours): frequency counts days, so
    # recency and T must be days too; the baseline used to fail with "frequency 0 but recency != 0".
    firsts = tx.groupby("customer_id", sort=True).head(1).head(300)
    extra = firsts.assign(date=firsts["date"] + pd.Timedelta(hours=7), amount=5.0)
    both = pd.concat([tx.assign(date=tx["date"] + pd.Timedelta(hours=9)), extra], ignore_index=True)
    prepared = prepare_transactions(both, observation_end=END)
    p = bgnbd_probability_alive(prepared, pd.Timestamp("2023-06-01 12:00"))
    assert np.isfinite(p).all() and p.between(0, 1).all()
    model = PropensityModel(horizon_days=90, n_estimators=30).fit(
        both, train_cutoff="2023-03-01", holdout_cutoff="2023-06-01 12:00", observation_end=END
    )
    assert model.metrics_["baseline_error"] is None
    assert 0.5 < model.metrics_["baseline_auc"] < 1.0


def test_unknown_baseline_name_is_refused():
    with pytest.raises(AnalyticsInputError, match="baseline must be 'bgnbd', a callable or None"):
        PropensityModel(baseline="pareto")


def test_baseline_that_cannot_fit_is_reported_not_fatal():
    # 40 customers; only 19 have a repeat purchase by the holdout cutoff, so BG/NBD refuses
    # (it needs 20 repeat buyers); the model still fits and reports why there is no baseline.
    rows = []
    for i in range(40):
        rows.append((f"c{i}", pd.Timestamp("2024-01-01") + pd.Timedelta(days=i), 10.0))
        if i < 12:
            rows.append((f"c{i}", pd.Timestamp("2024-02-15"), 10.0))
        if i % 4 == 0:
            rows.append((f"c{i}", pd.Timestamp("2024-03-10"), 10.0))
        if i % 2 == 0:
            rows.append((f"c{i}", pd.Timestamp("2024-04-20"), 10.0))
    tx = pd.DataFrame(rows, columns=["customer_id", "date", "amount"])
    model = PropensityModel(horizon_days=30, n_estimators=10, min_class_count=5)
    model.fit(tx, train_cutoff="2024-03-01", holdout_cutoff="2024-04-01", observation_end="2024-05-31")
    assert model.metrics_["baseline_auc"] is None
    assert "repeat purchase" in model.metrics_["baseline_error"]
    assert 0 <= model.metrics_["auc"] <= 1
