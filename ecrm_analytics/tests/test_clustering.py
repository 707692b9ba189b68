"""Segmentation: k chosen by silhouette, exact recovery of separated groups, profile, labels, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import skew
from sklearn.metrics import adjusted_rand_score, silhouette_score

from ecrm_analytics._validation import AnalyticsInputError
from ecrm_analytics.clustering import CustomerSegmenter
from ecrm_analytics.features import customer_features, prepare_transactions


def groups(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    specs = [  # n, recency, orders, total revenue
        (400, 15, 25, 5000),   # recent, frequent, high value
        (700, 500, 1, 30),     # lapsed one-off, low value
        (250, 120, 5, 400),    # middle
    ]
    frames, truth = [], []
    for g, (n, rec, orders, value) in enumerate(specs):
        frames.append(pd.DataFrame({
            "recency_days": rng.lognormal(np.log(rec), 0.1, n),
            "n_orders": np.round(rng.lognormal(np.log(orders), 0.1, n)).clip(1),
            "revenue_total": rng.lognormal(np.log(value), 0.15, n),
            "revenue_mean": rng.lognormal(np.log(value / orders), 0.15, n),
        }))
        truth += [g] * n
    feats = pd.concat(frames, ignore_index=True)
    feats.index = pd.Index([f"c{i}" for i in range(len(feats))], name="customer_id")
    return feats, np.array(truth)


@pytest.fixture(scope="module")
def fitted():
    feats, truth = groups()
    return CustomerSegmenter(k_range=(2, 6)).fit(feats), feats, truth


def test_k_chosen_by_silhouette_and_groups_recovered(fitted):
    seg, feats, truth = fitted
    assert seg.k_ == 3
    assert max(seg.silhouette_, key=seg.silhouette_.get) == 3
    assert sorted(seg.silhouette_) == [2, 3, 4, 5, 6]
    assert adjusted_rand_score(truth, seg.labels_) == 1.0
    # silhouette recomputed independently on the transformed data (sample = all points here)
    z = seg._transform(feats[list(seg.config["columns"])])
    assert seg.silhouette_[3] == pytest.approx(silhouette_score(z, seg.labels_), abs=1e-12)


def test_log_transform_and_standardisation(fitted):
    seg, feats, _ = fitted
    # the three-group mixture is not skewed beyond 1 in any column: nothing is logged
    assert {c: skew(feats[c]) > 1 for c in feats} == dict.fromkeys(feats, False)
    assert seg.log_columns_ == []
    z = seg._transform(feats[list(seg.config["columns"])])
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=0), 1, atol=1e-12)
    # a long-tailed spend column is logged before standardising
    rng = np.random.default_rng(5)
    tail = pd.DataFrame({"revenue_total": rng.lognormal(3, 1.5, 500), "recency_days": rng.uniform(0, 365, 500)})
    seg2 = CustomerSegmenter(columns=["revenue_total", "recency_days"], k_range=(2, 3)).fit(tail)
    assert seg2.log_columns_ == ["revenue_total"]
    z2 = seg2._transform(tail)
    expected = (np.log1p(tail["revenue_total"]) - np.log1p(tail["revenue_total"]).mean()) / np.log1p(
        tail["revenue_total"]).std(ddof=0)
    np.testing.assert_allclose(z2[:, 0], expected, rtol=1e-10)


def test_profile_sizes_means_and_labels(fitted):
    seg, feats, truth = fitted
    prof = seg.profile_
    assert prof["size"].tolist() == [700, 400, 250]  # numbered by size
    assert prof["share"].sum() == pytest.approx(1.0)
    for k in range(3):
        members = feats[seg.labels_ == k]
        assert prof.loc[k, "revenue_total_mean"] == pytest.approx(members["revenue_total"].mean(), rel=1e-12)
        assert prof.loc[k, "recency_days_mean"] == pytest.approx(members["recency_days"].mean(), rel=1e-12)
    # words are relative to the whole base, strongest deviation first (at most three)
    assert prof["label"].tolist() == [
        "lapsed, small-basket, occasional customers",
        "high-value, frequent, big-basket customers",
        "recent, low-value customers",
    ]


def test_predict_and_save_load(fitted, tmp_path):
    seg, feats, _ = fitted
    assert (seg.predict(feats) == seg.labels_).all()
    seg.save(tmp_path / "seg.json")
    loaded = CustomerSegmenter.load(tmp_path / "seg.json")
    assert loaded.k_ == 3
    assert (loaded.predict(feats) == seg.labels_).all()
    pd.testing.assert_frame_equal(loaded.profile_, seg.profile_, check_dtype=False, check_index_type=False)


def test_fixed_k_and_unknown_feature_words():
    feats, _ = groups(1)
    feats["visits"] = feats["n_orders"] * 3.0
    seg = CustomerSegmenter(n_clusters=2, columns=["recency_days", "visits"]).fit(feats)
    assert seg.k_ == 2 and list(seg.silhouette_) == [2]
    assert any("visits" in label for label in seg.profile_["label"])


def test_on_real_features_with_returns():
    tx = pd.DataFrame({
        "customer_id": list("aaabbbcccddd") + ["e"] * 3,
        "date": pd.date_range("2024-01-01", periods=15, freq="7D"),
        "amount": [10, 20, -5, 300, 250, 400, 12, 8, 9, 500, 20, -600, 7, 7, 7],
    })
    feats = customer_features(prepare_transactions(tx, observation_end="2024-12-31"), "2024-06-30")
    seg = CustomerSegmenter(k_range=(2, 3)).fit(feats)
    # customer d's net revenue is negative (a big return): revenue_total is not log-transformed
    assert "revenue_total" not in seg.log_columns_
    assert seg.labels_.index.tolist() == ["a", "b", "c", "d", "e"]


def test_bad_input():
    feats, _ = groups()
    with pytest.raises(AnalyticsInputError, match="missing column"):
        CustomerSegmenter().fit(feats.drop(columns="n_orders"))
    with pytest.raises(AnalyticsInputError, match="empty"):
        CustomerSegmenter().fit(feats.iloc[:0])
    with pytest.raises(AnalyticsInputError, match="1 customer"):
        CustomerSegmenter().fit(feats.iloc[:1])
    nan = feats.copy()
    nan.iloc[3, 1] = np.nan
    with pytest.raises(AnalyticsInputError, match="n_orders: 1"):
        CustomerSegmenter().fit(nan)
    same = pd.DataFrame({c: [1.0] * 10 for c in feats.columns})
    with pytest.raises(AnalyticsInputError, match="1 distinct profile"):
        CustomerSegmenter().fit(same)
    with pytest.raises(AnalyticsInputError, match="not fitted"):
        CustomerSegmenter().predict(feats)
    with pytest.raises(AnalyticsInputError, match="k_range"):
        CustomerSegmenter(k_range=(1, 3))


def test_all_one_time_buyers():
    rng = np.random.default_rng(2)
    tx = pd.DataFrame({
        "customer_id": [f"c{i}" for i in range(60)],
        "date": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.r_[rng.integers(0, 20, 30), rng.integers(300, 330, 30)],
                                                             unit="D"),
        "amount": np.r_[rng.uniform(5, 10, 30), rng.uniform(500, 900, 30)],
    })
    feats = customer_features(prepare_transactions(tx, observation_end="2024-12-31"), "2024-12-31")
    assert (feats["n_orders"] == 1).all()
    seg = CustomerSegmenter(k_range=(2, 4)).fit(feats)  # the constant n_orders column is harmless
    assert seg.k_ == 2
    assert sorted(seg.profile_["size"].tolist()) == [30, 30]
    assert set(seg.profile_["label"]) == {"lapsed, low-value, small-basket customers",
                                          "recent, high-value, big-basket customers"}
