"""BetaGeoModel: gradient, aggregation, predictions' edge cases, bad input, save/load, recovery."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import approx_fprime

from ecrm_analytics import AnalyticsInputError
from ecrm_analytics.clv import BetaGeoModel
from ecrm_analytics.datasets import generate_bgnbd_customers

from .conftest import history

CDNOW = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}


def fixed(**params) -> BetaGeoModel:
    model = BetaGeoModel(time_unit="W")
    model.params_ = params or dict(CDNOW)
    return model


def test_analytic_gradient_matches_finite_differences(cdnow_summary):
    arrays = {"x": cdnow_summary["frequency"].to_numpy(), "t_x": cdnow_summary["recency"].to_numpy() / 39,
              "T": cdnow_summary["T"].to_numpy() / 39}
    w = np.ones(len(cdnow_summary))
    for theta in (np.log([0.3, 0.1, 0.9, 2.0]), np.log([1.5, 2.0, 0.2, 7.0])):
        _, grad = BetaGeoModel._neg_ll_and_grad(theta, arrays, w)
        numeric = approx_fprime(theta, lambda t: BetaGeoModel._neg_ll_and_grad(t, arrays, w)[0], 1e-7)
        np.testing.assert_allclose(grad, numeric, rtol=2e-5)


def test_aggregated_and_per_customer_fits_agree(cdnow_summary, cdnow_bgnbd):
    plain = BetaGeoModel(time_unit="W", aggregate=False).fit(cdnow_summary)
    for k in CDNOW:
        assert plain.params_[k] == pytest.approx(cdnow_bgnbd.params_[k], rel=1e-6)
    assert cdnow_bgnbd.fit_diagnostics_["n_rows_fitted"] == 1016
    assert plain.fit_diagnostics_["n_rows_fitted"] == 2357
    assert plain.fit_diagnostics_["log_likelihood"] == pytest.approx(-9582.4292, abs=1e-3)


def test_fit_with_weights_equals_fit_on_expanded_rows(cdnow_summary, cdnow_bgnbd):
    counts = cdnow_summary.groupby(["frequency", "recency", "T"]).size().reset_index(name="n")
    weighted = BetaGeoModel(time_unit="W", aggregate=False).fit(counts, weights=counts["n"])
    for k in CDNOW:
        assert weighted.params_[k] == pytest.approx(cdnow_bgnbd.params_[k], rel=1e-6)


def test_fit_is_invariant_to_the_time_unit(cdnow_summary, cdnow_bgnbd):
    in_days = cdnow_summary.assign(recency=cdnow_summary["recency"] * 7, T=cdnow_summary["T"] * 7)
    days = BetaGeoModel(time_unit="D").fit(in_days)
    assert days.params_["alpha"] == pytest.approx(cdnow_bgnbd.params_["alpha"] * 7, rel=1e-5)
    for k in ("r", "a", "b"):
        assert days.params_[k] == pytest.approx(cdnow_bgnbd.params_[k], rel=1e-5)


def test_predictions_on_hand_checked_histories():
    model = fixed()
    h = history([(0, 0.0, 38.86), (2, 30.43, 38.86), (2, 1.0, 38.86)], index=["new", "recent", "stale"])
    alive = model.probability_alive(h)
    assert alive["new"] == 1.0  # a one-time buyer cannot have dropped out under BG/NBD
    # closed form: 1 / (1 + a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x))
    r, al, a, b = CDNOW.values()
    expect = 1 / (1 + a / (b + 1) * ((al + 38.86) / (al + 30.43)) ** (r + 2))
    assert alive["recent"] == pytest.approx(expect, rel=1e-12)
    assert alive["stale"] < 0.3 < alive["recent"]
    assert model.predict_purchases(h, 0).tolist() == [0.0, 0.0, 0.0]
    e = model.predict_purchases(h, 52)
    assert e.name == "expected_purchases" and list(e.index) == ["new", "recent", "stale"]
    assert e["recent"] > e["new"] > e["stale"] > 0


def test_expected_purchases_stay_finite_for_heavy_buyers():
    model = fixed()
    h = history([(300, 77.0, 78.0), (1000, 500.0, 520.0)])
    e = model.predict_purchases(h, 52).to_numpy()
    assert np.isfinite(e).all() and (e > 0).all()
    # a heavy, recent buyer: below their own rate (300 in 78 weeks -> 200 in 52) because of dropout risk
    assert 100 < e[0] < 200
    lifetimes = pytest.importorskip("lifetimes")
    ref = lifetimes.BetaGeoFitter()
    ref.params_ = pd.Series(CDNOW)
    expected = ref.conditional_expected_number_of_purchases_up_to_time(
        52, h["frequency"].to_numpy(), h["recency"].to_numpy(), h["T"].to_numpy())
    np.testing.assert_allclose(e, expected, rtol=1e-10)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([(1, 5.0, 4.0)], "recency > T"),
        ([(0, 2.0, 4.0)], "frequency 0 but recency != 0"),
        ([(1.5, 2.0, 4.0)], "whole numbers"),
        ([(-1, 0.0, 4.0)], "negative"),
        ([(np.nan, 0.0, 4.0)], "missing value"),
        ([], "data is empty"),
    ],
)
def test_invalid_summaries_are_refused(rows, message):
    with pytest.raises(AnalyticsInputError) as err:
        BetaGeoModel().fit(history(rows))
    assert message in str(err.value)


def test_too_few_repeat_buyers_are_refused_with_the_threshold():
    one_timers = history([(0, 0.0, float(t)) for t in range(1, 500)])
    with pytest.raises(AnalyticsInputError, match=r"at least 20 customers with a repeat purchase .* has 0 of 499"):
        BetaGeoModel().fit(one_timers)
    single = history([(3, 10.0, 20.0)])
    with pytest.raises(AnalyticsInputError, match="has 1 of 1"):
        BetaGeoModel().fit(single)


def test_unfitted_model_says_so():
    with pytest.raises(AnalyticsInputError, match="not fitted"):
        BetaGeoModel().probability_alive(history([(0, 0.0, 1.0)]))


def test_save_and_load_round_trip(tmp_path, cdnow_summary, cdnow_bgnbd):
    path = tmp_path / "bgnbd.json"
    cdnow_bgnbd.save(path)
    doc = json.loads(path.read_text())
    assert doc["model"] == "BetaGeoModel" and doc["config"]["time_unit"] == "W"
    assert doc["fit_diagnostics"]["n_customers"] == 2357
    loaded = BetaGeoModel.load(path)
    assert loaded.params_ == cdnow_bgnbd.params_
    pd.testing.assert_series_equal(loaded.predict_purchases(cdnow_summary, 10),
                                   cdnow_bgnbd.predict_purchases(cdnow_summary, 10))
    from ecrm_analytics.clv import GammaGammaModel

    with pytest.raises(AnalyticsInputError, match="holds a 'BetaGeoModel', not a GammaGammaModel"):
        GammaGammaModel.load(path)
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(AnalyticsInputError, match="not a saved model"):
        BetaGeoModel.load(tmp_path / "junk.json")


@pytest.mark.slow
def test_recovers_simulated_parameters():
    rng = np.random.default_rng(4)
    data = generate_bgnbd_customers(400_000, T=rng.uniform(5, 78, 400_000), time_step=None, seed=4)
    model = BetaGeoModel(time_unit="W").fit(data)
    for k, v in CDNOW.items():
        assert model.params_[k] == pytest.approx(v, rel=0.06), k


def test_line_search_failure_is_retried_not_fatal():
    # 200 simulated customers whose dropout probability is not identified: (a, b) drift off
    # along a flat ridge and L-BFGS-B stops with ABNORMAL_TERMINATION_IN_LNSRCH. The fitter
    # retries with Nelder-Mead and must end at a point at least as good, with a small gradient.
    from ecrm_analytics.datasets import generate_bgnbd_customers

    rng = np.random.default_rng(24)
    T = rng.uniform(5, 200, 200).round()
    params = dict(r=rng.uniform(0.1, 3), alpha=rng.uniform(1, 50), a=rng.uniform(0.2, 3), b=rng.uniform(0.5, 10))
    data = generate_bgnbd_customers(200, T=T, time_step=1.0, seed=24, **params)
    model = BetaGeoModel(time_unit="D").fit(data)
    d = model.fit_diagnostics_
    assert d["converged"] and "Nelder-Mead" in d["optimizer"]
    assert d["gradient_norm"] < 1e-4
    assert model.params_["r"] == pytest.approx(0.4768, abs=1e-3)
    assert model.params_["alpha"] == pytest.approx(40.14, abs=0.05)
    assert model.params_["a"] / (model.params_["a"] + model.params_["b"]) == pytest.approx(0.1994, abs=1e-3)
    assert d["log_likelihood"] == pytest.approx(-917.5801, abs=1e-3)
    assert np.isfinite(model.probability_alive(data)).all()


def _identical_weekly_buyers():
    from ecrm_analytics.rfm import rfm_summary

    rows = [(f"c{i}", pd.Timestamp("2024-01-01") + pd.Timedelta(days=i + 7 * k), 20.0 + k % 2)
            for i in range(40) for k in range(10)]
    tx = pd.DataFrame(rows, columns=["customer", "at", "amount"])
    return rfm_summary(tx, "customer", "at", "amount", observation_end="2024-04-30")


def test_customers_who_all_buy_alike_are_refused():
    from ecrm_analytics.clv import GammaGammaModel

    data = _identical_weekly_buyers()
    with pytest.raises(AnalyticsInputError, match=r"no heterogeneity between customers: .*r=\S+ > 10000"):
        BetaGeoModel(time_unit="D").fit(data)
    with pytest.raises(AnalyticsInputError, match=r"no heterogeneity between customers: .*p=\S+ > 10000"):
        GammaGammaModel().fit(data)
