"""rfm_summary, calibration_and_holdout_data, rfm_scores and rfm_segments on hand-checked data."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from ecrm_analytics import AnalyticsInputError
from ecrm_analytics.rfm import (
    SEGMENT_GRID,
    SEGMENTS,
    calibration_and_holdout_data,
    rfm_scores,
    rfm_segments,
    rfm_summary,
)


@pytest.fixture
def tx():
    # ann: 2024-01-01 (two lines, merged: 15), 01-08 (20), 01-15 (30), and 01-20 after the end
    # bob: one purchase on 01-05; cat: 01-03 and 01-04 (two lines on 01-04)
    return pd.DataFrame(
        {
            "customer": ["ann", "ann", "bob", "ann", "cat", "cat", "cat", "ann", "ann"],
            "at": pd.to_datetime([
                "2024-01-01 09:00", "2024-01-01 17:30", "2024-01-05", "2024-01-08 23:59",
                "2024-01-03", "2024-01-04 10:00", "2024-01-04 11:00", "2024-01-15", "2024-01-20",
            ], format="ISO8601"),
            "amount": [10.0, 5.0, 7.0, 20.0, 4.0, 1.0, 2.0, 30.0, 99.0],
        }
    )


def test_summary_in_days_merges_same_day_and_counts_repeats(tx):
    s = rfm_summary(tx, "customer", "at", "amount", observation_end="2024-01-15")
    assert list(s.index) == ["ann", "bob", "cat"]
    assert s.index.name == "customer"
    assert s.loc["ann"].tolist() == [2.0, 14.0, 14.0, 25.0]  # repeats 20 and 30
    assert s.loc["bob"].tolist() == [0.0, 0.0, 10.0, 0.0]
    assert s.loc["cat"].tolist() == [1.0, 1.0, 12.0, 3.0]  # 1 + 2 merged on 01-04
    assert s.attrs == {"time_unit": "D", "observation_end": "2024-01-15", "lines_after_end": 1}


def test_summary_in_weeks_and_all_purchases_monetary(tx):
    s = rfm_summary(tx, "customer", "at", "amount", observation_end="2024-01-15", time_unit="W",
                    monetary="all")
    assert s.loc["ann", "recency"] == pytest.approx(2.0)
    assert s.loc["cat", "T"] == pytest.approx(12 / 7)
    assert s["monetary_value"].tolist() == pytest.approx([65 / 3, 7.0, 3.5])


def test_default_observation_end_is_last_transaction_day(tx):
    s = rfm_summary(tx, "customer", "at")
    assert list(s.columns) == ["frequency", "recency", "T"]
    assert s.loc["ann"].tolist() == [3.0, 19.0, 19.0]
    assert s.attrs["observation_end"] == "2024-01-20" and s.attrs["lines_after_end"] == 0


def test_weekly_merge_uses_monday_weeks(tx):
    # 2024-01-01 is a Monday: ann's 01-01 and the 01-03..04 purchases of cat fall in one week each
    s = rfm_summary(tx, "customer", "at", "amount", observation_end="2024-01-15", merge_period="W",
                    time_unit="W")
    assert s.loc["ann"].tolist() == [2.0, 2.0, 2.0, 25.0]
    assert s.loc["cat"].tolist() == [0.0, 0.0, 2.0, 0.0]


def test_timezone_aware_times_are_bucketed_by_utc_day():
    tx = pd.DataFrame({
        "c": [1, 1],
        # 23:30 in New York on Jan 1 is 04:30 UTC on Jan 2; both lines are the same UTC day
        "t": pd.to_datetime(["2024-01-01 23:30", "2024-01-02 10:00"]).tz_localize("America/New_York"),
    })
    s = rfm_summary(tx, "c", "t", observation_end=pd.Timestamp("2024-01-05", tz="UTC"))
    assert s.loc[1].tolist() == [0.0, 0.0, 3.0]
    # in a naive local reading they would be two days: the UTC rule is what makes them one
    naive = tx.assign(t=tx["t"].dt.tz_localize(None))
    assert rfm_summary(naive, "c", "t", observation_end="2024-01-05").loc[1].tolist() == [1.0, 1.0, 4.0]


def test_decimal_amounts_and_string_dates_are_accepted():
    tx = pd.DataFrame({"c": ["x", "x"], "t": ["2024-02-01", "2024-02-11"],
                       "m": [Decimal("10.10"), Decimal("2.05")]})
    s = rfm_summary(tx, "c", "t", "m")
    assert s.loc["x"].tolist() == pytest.approx([1.0, 10.0, 10.0, 2.05], rel=1e-12)


@pytest.mark.parametrize(
    ("frame", "kwargs", "message"),
    [
        (pd.DataFrame({"c": [], "t": [], "m": []}), {}, "transactions is empty"),
        (pd.DataFrame({"c": [1], "t": ["2024-01-01"]}), {}, "missing column(s) 'm' (amount)"),
        (pd.DataFrame({"c": [1, 2], "t": ["2024-01-01", None], "m": [1.0, 2.0]}), {}, "1 missing value"),
        (pd.DataFrame({"c": [1], "t": ["yesterday-ish"], "m": [1.0]}), {}, "not dates"),
        (pd.DataFrame({"c": [1, 1], "t": ["2024-01-01", "2024-01-02"], "m": [5.0, -5.0]}), {},
         "1 negative value(s) (minimum -5); returns and refunds"),
        (pd.DataFrame({"c": [1], "t": ["2024-01-01"], "m": [np.nan]}), {}, "'m' has 1 missing"),
        (pd.DataFrame({"c": [1], "t": ["2024-01-01"], "m": ["ten"]}), {}, "'m' must be numeric"),
        (pd.DataFrame({"c": [1], "t": ["2024-03-01"], "m": [1.0]}), {"observation_end": "2024-02-01"},
         "no transactions on or before observation_end"),
        (pd.DataFrame({"c": [None], "t": ["2024-03-01"], "m": [1.0]}), {}, "customer column has missing"),
        (pd.DataFrame({"c": [1], "t": ["2024-03-01"], "m": [1.0]}), {"time_unit": "months"}, "time_unit"),
    ],
)
def test_bad_input_gets_a_clear_error(frame, kwargs, message):
    with pytest.raises(AnalyticsInputError) as err:
        rfm_summary(frame, "c", "t", "m", **kwargs)
    assert message in str(err.value)


def test_calibration_and_holdout(tx):
    extra = pd.DataFrame({"customer": ["dan"], "at": pd.to_datetime(["2024-01-18"]), "amount": [8.0]})
    out = calibration_and_holdout_data(pd.concat([tx, extra]), "customer", "at", "amount",
                                       calibration_end="2024-01-10", observation_end="2024-01-24")
    assert list(out.index) == ["ann", "bob", "cat"]  # dan only bought in the holdout
    assert list(out.columns) == ["frequency_cal", "recency_cal", "T_cal", "monetary_value_cal",
                                 "frequency_holdout", "monetary_value_holdout", "duration_holdout"]
    assert out.loc["ann"].tolist() == [1.0, 7.0, 9.0, 20.0, 2.0, 64.5, 14.0]
    assert out.loc["bob"].tolist() == [0.0, 0.0, 5.0, 0.0, 0.0, 0.0, 14.0]
    with pytest.raises(AnalyticsInputError, match="must be after calibration_end"):
        calibration_and_holdout_data(tx, "customer", "at", calibration_end="2024-01-10",
                                     observation_end="2024-01-10")


def test_scores_are_quantile_ranks_with_shared_ties():
    s = pd.DataFrame({
        "frequency": [0, 0, 0, 0, 1, 2, 3, 5, 8, 13],
        "recency": [0, 0, 0, 0, 10, 20, 30, 40, 50, 60],
        "T": [100, 90, 80, 70, 60, 60, 60, 60, 60, 60],
        "monetary_value": [10, 20, 30, 40, 50, 60, 70, 80, 90, 100],
    }, index=pd.Index(range(10), name="customer"), dtype=float)
    sc = rfm_scores(s)
    # four one-time buyers tie on F: all get 1; then ranks 5..10 -> 3,3,4,4,5,5
    assert sc["f_score"].tolist() == [1, 1, 1, 1, 3, 3, 4, 4, 5, 5]
    # days since last purchase: 100, 90, 80, 70, 50, 40, 30, 20, 10, 0
    assert sc["r_score"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert sc["m_score"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert sc["fm_score"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert sc.loc[9, "rfm_code"] == "555"
    # deterministic: shuffling the rows changes nothing
    shuffled = rfm_scores(s.sample(frac=1.0, random_state=7)).sort_index()
    pd.testing.assert_frame_equal(shuffled, sc)


def test_segment_grid_covers_every_cell_once_with_all_named_segments():
    assert sorted(SEGMENT_GRID) == [(r, f) for r in range(1, 6) for f in range(1, 6)]
    assert set(SEGMENT_GRID.values()) == set(SEGMENTS)
    assert len(SEGMENTS) == 11


def test_segments_follow_the_documented_grid():
    scores = pd.DataFrame({"r_score": [5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 1],
                           "fm_score": [5, 1, 4, 1, 3, 1, 5, 3, 1, 2, 4]}, index=list("abcdefghijk"))
    seg = rfm_segments(scores)
    assert seg.tolist() == ["champions", "new", "loyal", "promising", "need attention", "about to sleep",
                            "can't lose them", "at risk", "lost", "hibernating", "at risk"]
    assert list(seg.cat.categories) == list(SEGMENTS)
    with pytest.raises(AnalyticsInputError, match="5-level scores"):
        rfm_segments(pd.DataFrame({"r_score": [7], "fm_score": [1]}))


def test_scores_and_segments_on_cdnow_match_a_naive_recomputation(cdnow_transactions):
    s = rfm_summary(cdnow_transactions, "customer_id", "date", "amount", observation_end="1997-09-30",
                    monetary="all")
    scores = rfm_scores(s)
    seg = rfm_segments(scores)

    # naive, loop-free-of-pandas reference: score = 1 + floor(5 * #strictly smaller / n)
    def naive(values):
        v = np.asarray(values, dtype=float)
        return np.array([1 + (5 * int((v < x).sum())) // len(v) for x in v])

    r, f, m = naive(-(s["T"] - s["recency"])), naive(s["frequency"]), naive(s["monetary_value"])
    assert scores["r_score"].tolist() == r.tolist()
    assert scores["f_score"].tolist() == f.tolist()
    assert scores["m_score"].tolist() == m.tolist()
    grid = {5: ["new", "potential loyalists", "potential loyalists", "champions", "champions"],
            4: ["promising", "potential loyalists", "potential loyalists", "loyal", "loyal"],
            3: ["about to sleep", "about to sleep", "need attention", "loyal", "loyal"],
            2: ["hibernating", "hibernating", "at risk", "at risk", "can't lose them"],
            1: ["lost", "hibernating", "at risk", "at risk", "can't lose them"]}
    expected = [grid[ri][(fi + mi + 1) // 2 - 1] for ri, fi, mi in zip(r, f, m, strict=True)]
    assert seg.tolist() == expected
    # the 1,411 one-time buyers all tie at F=1, so F=2 is unused
    assert scores["f_score"].value_counts().sort_index().to_dict() == {1: 1411, 3: 439, 4: 214, 5: 293}
    assert seg.value_counts().to_dict() == {
        "hibernating": 446, "at risk": 381, "champions": 351, "potential loyalists": 351,
        "about to sleep": 272, "loyal": 224, "need attention": 156, "lost": 124, "promising": 45,
        "can't lose them": 7, "new": 0,
    }


@pytest.mark.slow
def test_summary_of_a_million_lines_matches_a_pandas_groupby():
    from ecrm_analytics.datasets import generate_transactions

    tx = generate_transactions(1_000_000, seed=11)
    s = rfm_summary(tx, "customer_id", "ordered_at", "amount")
    day = tx["ordered_at"].dt.floor("D")
    occ = tx.groupby(["customer_id", day])["amount"].sum().reset_index()
    g = occ.groupby("customer_id")
    expected_freq = g.size() - 1
    first = g["ordered_at"].min()
    end = day.max()
    np.testing.assert_array_equal(s["frequency"].to_numpy(), expected_freq.to_numpy())
    np.testing.assert_allclose(s["T"].to_numpy(), ((end - first).dt.days).to_numpy())
    np.testing.assert_allclose(s["recency"].to_numpy(), ((g["ordered_at"].max() - first).dt.days).to_numpy())
    first_amount = occ.sort_values(["customer_id", "ordered_at"]).groupby("customer_id")["amount"].first()
    repeat_mean = ((g["amount"].sum() - first_amount) / expected_freq).where(expected_freq > 0, 0.0)
    np.testing.assert_allclose(s["monetary_value"].to_numpy(), repeat_mean.to_numpy(), rtol=1e-12)
