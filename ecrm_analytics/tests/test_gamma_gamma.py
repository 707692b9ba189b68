"""GammaGammaModel: gradient, closed forms, bad input, CLV arithmetic, save/load, recovery."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import approx_fprime

from ecrm_analytics import AnalyticsInputError
from ecrm_analytics.clv import BetaGeoModel, GammaGammaModel, customer_lifetime_value
from ecrm_analytics.datasets import generate_bgnbd_customers


def spend(rows, index=None):
    return pd.DataFrame(rows, columns=["frequency", "monetary_value"], index=index)


def test_analytic_gradient_matches_finite_differences(cdnow_summary):
    rep = cdnow_summary[cdnow_summary["frequency"] > 0]
    arrays = {"x": rep["frequency"].to_numpy(), "m": rep["monetary_value"].to_numpy()}
    w = np.ones(len(rep))
    theta = np.log([4.0, 2.5, 20.0])
    _, grad = GammaGammaModel._neg_ll_and_grad(theta, arrays, w)
    numeric = approx_fprime(theta, lambda t: GammaGammaModel._neg_ll_and_grad(t, arrays, w)[0], 1e-7)
    np.testing.assert_allclose(grad, numeric, rtol=2e-5)


def test_one_time_buyers_are_skipped_and_correlation_reported(cdnow_summary, cdnow_gamma_gamma):
    only_repeat = GammaGammaModel().fit(cdnow_summary[cdnow_summary["frequency"] > 0])
    assert only_repeat.params_ == pytest.approx(cdnow_gamma_gamma.params_, rel=1e-9)
    assert cdnow_gamma_gamma.fit_diagnostics_["frequency_spend_correlation"] == pytest.approx(0.1139, abs=1e-4)


def test_expected_average_spend_closed_form():
    model = GammaGammaModel()
    model.params_ = {"p": 6.25, "q": 3.74, "gamma": 15.44}
    out = model.expected_average_spend(spend([(0, 0.0), (1, 20.0), (6, 55.0)], index=["a", "b", "c"]))
    assert list(out.index) == ["a", "b", "c"]
    assert out["a"] == pytest.approx(15.44 * 6.25 / 2.74, rel=1e-14)
    assert out["c"] == pytest.approx((15.44 + 55.0 * 6) * 6.25 / (6.25 * 6 + 2.74), rel=1e-14)
    model.params_ = {"p": 6.25, "q": 0.9, "gamma": 15.44}
    with pytest.raises(AnalyticsInputError, match="q=0.9 <= 1"):
        model.expected_average_spend(spend([(1, 20.0)]))


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([(2, 10.0)] * 30 + [(1, 0.0)], "positive monetary_value for every repeat buyer; 1 have 0"),
        ([(2, 10.0)] * 30 + [(1, -4.0)], "negative"),
        ([(2, 10.0)] * 19 + [(0, 0.0)] * 50, "at least 20 customers with a repeat purchase"),
        ([(0, 0.0)] * 50, "the data has 0"),
        ([(2, np.nan)] * 30, "missing value"),
    ],
)
def test_bad_spend_data_is_refused(rows, message):
    with pytest.raises(AnalyticsInputError) as err:
        GammaGammaModel().fit(spend(rows))
    assert message in str(err.value)


def test_clv_is_the_discounted_sum_of_monthly_increments():
    bg = BetaGeoModel(time_unit="D")
    bg.params_ = {"r": 0.243, "alpha": 4.414 * 7, "a": 0.793, "b": 2.426}
    gg = GammaGammaModel()
    gg.params_ = {"p": 6.25, "q": 3.74, "gamma": 15.44}
    data = pd.DataFrame({"frequency": [2.0, 0.0], "recency": [213.0, 0.0], "T": [272.0, 272.0],
                         "monetary_value": [22.35, 0.0]}, index=[1, 3])
    clv = customer_lifetime_value(bg, gg, data, months=3, discount_rate=0.05)
    m = gg.expected_average_spend(data)
    e = [bg.predict_purchases(data, 30 * i) for i in range(4)]
    manual = sum(m * (e[i] - e[i - 1]) / 1.05**i for i in range(1, 4))
    pd.testing.assert_series_equal(clv, manual.rename("clv"), rtol=1e-12)
    # no discounting and one long period: value = spend * expected purchases
    flat = customer_lifetime_value(bg, gg, data, months=1, discount_rate=0.0, time_unit="D")
    np.testing.assert_allclose(flat.to_numpy(), (m * e[1]).to_numpy(), rtol=1e-12)
    with pytest.raises(AnalyticsInputError, match="months must be a positive whole number"):
        customer_lifetime_value(bg, gg, data, months=0)


def test_save_and_load_round_trip(tmp_path, cdnow_gamma_gamma):
    cdnow_gamma_gamma.save(tmp_path / "gg.json")
    loaded = GammaGammaModel.load(tmp_path / "gg.json")
    assert loaded.params_ == cdnow_gamma_gamma.params_
    assert loaded.fit_diagnostics_["n_repeat_customers"] == 946


@pytest.mark.slow
def test_recovers_simulated_parameters():
    data = generate_bgnbd_customers(400_000, T=78.0, spend_params=(6.25, 3.74, 15.44), seed=9)
    p = GammaGammaModel().fit(data).params_
    assert p["p"] == pytest.approx(6.25, rel=0.05)
    assert p["q"] == pytest.approx(3.74, rel=0.05)
    assert p["gamma"] == pytest.approx(15.44, rel=0.06)
