"""Validation on the CDNOW cohort sample against the published estimates and the lifetimes package.

The summary is built by OUR rfm_summary from the raw transaction lines (CDNOW_sample.txt),
weeks 1-39 as calibration (observation end 1997-09-30), time in weeks, same-day purchases
merged, spend averaged over repeat purchases. lifetimes is only the reference here.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from ecrm_analytics.clv import customer_lifetime_value
from ecrm_analytics.rfm import calibration_and_holdout_data

lifetimes = pytest.importorskip("lifetimes")
from lifetimes import BetaGeoFitter, GammaGammaFitter, ParetoNBDFitter  # noqa: E402
from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value  # noqa: E402
from lifetimes.utils import (  # noqa: E402
    calibration_and_holdout_data as lt_calibration_and_holdout_data,
)
from lifetimes.utils import summary_data_from_transaction_data  # noqa: E402

REL = 1e-4


def sig3(x: float) -> str:
    return f"{x:.3g}"


def xtT(s):
    return s["frequency"].to_numpy(), s["recency"].to_numpy(), s["T"].to_numpy()


def test_summary_matches_lifetimes_on_the_raw_lines(cdnow_transactions, cdnow_summary):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = summary_data_from_transaction_data(
            cdnow_transactions, "customer_id", "date", monetary_value_col="amount",
            observation_period_end="1997-09-30", freq="D", freq_multiplier=7,
        ).sort_index()
    assert len(cdnow_summary) == 2357
    assert list(cdnow_summary.index) == list(ref.index)
    for col in ["frequency", "recency", "T", "monetary_value"]:
        np.testing.assert_allclose(cdnow_summary[col].to_numpy(), ref[col].to_numpy(), rtol=1e-12, atol=1e-12)
    assert int(cdnow_summary["frequency"].sum()) == 2457  # FHL (2005): 2,457 repeat transactions in weeks 1-39
    assert int((cdnow_summary["frequency"] > 0).sum()) == 946


def test_summary_matches_the_published_summary_file(cdnow_summary):
    """lifetimes' cdnow_customers_summary_with_transactions.csv (Hardie's file, rounded to 2 decimals)."""
    pub = load_cdnow_summary_data_with_monetary_value()
    np.testing.assert_array_equal(cdnow_summary["frequency"].to_numpy(), pub["frequency"].to_numpy())
    np.testing.assert_allclose(cdnow_summary["recency"].to_numpy(), pub["recency"].to_numpy(), atol=0.005)
    np.testing.assert_allclose(cdnow_summary["T"].to_numpy(), pub["T"].to_numpy(), atol=0.005)
    np.testing.assert_allclose(cdnow_summary["monetary_value"].to_numpy(), pub["monetary_value"].to_numpy(),
                               atol=0.0051)


def test_bgnbd_reproduces_fader_hardie_lee_2005(cdnow_bgnbd):
    p = cdnow_bgnbd.params_
    assert [sig3(p[k]) for k in ("r", "alpha", "a", "b")] == ["0.243", "4.41", "0.793", "2.43"]
    # published to 4 significant figures in FHL (2005), table/text: r=0.243, alpha=4.414, a=0.793, b=2.426
    assert p["alpha"] == pytest.approx(4.414, abs=5e-4)
    assert p["b"] == pytest.approx(2.426, abs=5e-4)
    assert cdnow_bgnbd.fit_diagnostics_["log_likelihood"] == pytest.approx(-9582.4, abs=0.05)
    assert cdnow_bgnbd.fit_diagnostics_["n_repeat_customers"] == 946


def test_bgnbd_matches_lifetimes_fit(cdnow_summary, cdnow_bgnbd):
    ref = BetaGeoFitter().fit(*xtT(cdnow_summary))
    for k in ("r", "alpha", "a", "b"):
        assert cdnow_bgnbd.params_[k] == pytest.approx(ref.params_[k], rel=1e-4)
    # our optimum is at least as good as theirs, under the same (our) likelihood
    theirs = type(cdnow_bgnbd)(time_unit="W")
    theirs.params_ = {k: float(ref.params_[k]) for k in ("r", "alpha", "a", "b")}
    assert cdnow_bgnbd.log_likelihood(cdnow_summary) >= theirs.log_likelihood(cdnow_summary) - 1e-9


def test_gamma_gamma_reproduces_fader_hardie_lee_2005(cdnow_gamma_gamma):
    p = cdnow_gamma_gamma.params_
    assert [sig3(p[k]) for k in ("p", "q", "gamma")] == ["6.25", "3.74", "15.4"]
    assert p["gamma"] == pytest.approx(15.44, abs=0.005)
    assert cdnow_gamma_gamma.fit_diagnostics_["n_repeat_customers"] == 946


def test_gamma_gamma_on_the_published_spend_file_matches_lifetimes_docs():
    """lifetimes' docs report p=6.25, q=3.74, v=15.44 on the rounded summary file."""
    from ecrm_analytics.clv import GammaGammaModel

    pub = load_cdnow_summary_data_with_monetary_value()
    p = GammaGammaModel().fit(pub).params_
    assert [round(p["p"], 2), round(p["q"], 2), round(p["gamma"], 2)] == [6.25, 3.74, 15.45]


def test_paretonbd_matches_published_and_lifetimes(cdnow_summary, cdnow_paretonbd):
    p = cdnow_paretonbd.params_
    # Fader & Hardie's Pareto/NBD estimates on CDNOW: r=0.553, alpha=10.58, s=0.606, beta=11.67, LL=-9595.0
    assert [sig3(p[k]) for k in ("r", "alpha", "s", "beta")] == ["0.553", "10.6", "0.606", "11.7"]
    assert cdnow_paretonbd.fit_diagnostics_["log_likelihood"] == pytest.approx(-9595.0, abs=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = ParetoNBDFitter().fit(*xtT(cdnow_summary))
    # lifetimes stops Nelder-Mead at tol=1e-4, so compare loosely and require our LL >= theirs
    for k in ("r", "alpha", "s", "beta"):
        assert p[k] == pytest.approx(ref.params_[k], rel=1e-3)
    theirs = type(cdnow_paretonbd)(time_unit="W")
    theirs.params_ = {k: float(ref.params_[k]) for k in ("r", "alpha", "s", "beta")}
    assert cdnow_paretonbd.log_likelihood(cdnow_summary) >= theirs.log_likelihood(cdnow_summary) - 1e-9


def _lifetimes_models(bg, gg, pn):
    lb = BetaGeoFitter()
    lb.params_ = pd.Series(bg.params_)
    lb.predict = lb.conditional_expected_number_of_purchases_up_to_time
    lg = GammaGammaFitter()
    lg.params_ = pd.Series({"p": gg.params_["p"], "q": gg.params_["q"], "v": gg.params_["gamma"]})
    lp = ParetoNBDFitter()
    lp.params_ = pd.Series(pn.params_)
    lp.predict = lp.conditional_expected_number_of_purchases_up_to_time
    return lb, lg, lp


# lifetimes' Pareto/NBD P(alive) takes log(0) for customers whose last purchase is at T (A0 = 0)
@pytest.mark.filterwarnings("ignore:divide by zero encountered in log:RuntimeWarning")
def test_predictions_agree_with_lifetimes(cdnow_summary, cdnow_bgnbd, cdnow_gamma_gamma, cdnow_paretonbd):
    s = cdnow_summary
    lb, lg, lp = _lifetimes_models(cdnow_bgnbd, cdnow_gamma_gamma, cdnow_paretonbd)
    x, t_x, T = xtT(s)
    checks = {
        "bg expected 39w": (cdnow_bgnbd.predict_purchases(s, 39),
                            lb.conditional_expected_number_of_purchases_up_to_time(39, x, t_x, T)),
        "bg p_alive": (cdnow_bgnbd.probability_alive(s), lb.conditional_probability_alive(x, t_x, T)),
        "pnbd expected 39w": (cdnow_paretonbd.predict_purchases(s, 39),
                              lp.conditional_expected_number_of_purchases_up_to_time(39, x, t_x, T)),
        "pnbd p_alive": (cdnow_paretonbd.probability_alive(s), lp.conditional_probability_alive(x, t_x, T)),
        "gg spend": (cdnow_gamma_gamma.expected_average_spend(s),
                     lg.conditional_expected_average_profit(s["frequency"], s["monetary_value"])),
        "clv bg 12m": (customer_lifetime_value(cdnow_bgnbd, cdnow_gamma_gamma, s, months=12, discount_rate=0.01),
                       lg.customer_lifetime_value(lb, s["frequency"], s["recency"], s["T"], s["monetary_value"],
                                                  time=12, discount_rate=0.01, freq="W")),
        "clv pnbd 6m": (customer_lifetime_value(cdnow_paretonbd, cdnow_gamma_gamma, s, months=6,
                                                discount_rate=0.02),
                        lg.customer_lifetime_value(lp, s["frequency"], s["recency"], s["T"], s["monetary_value"],
                                                   time=6, discount_rate=0.02, freq="W")),
    }
    for name, (ours, theirs) in checks.items():
        assert list(ours.index) == list(s.index), name
        np.testing.assert_allclose(ours.to_numpy(), np.asarray(theirs, dtype=float), rtol=REL, err_msg=name)
    # regression anchors (values of this implementation, equal to lifetimes' above), so that a
    # change in lifetimes cannot move the reference unnoticed: customer 1 (x=2, t_x=30.43, T=38.86)
    assert cdnow_bgnbd.predict_purchases(s.loc[[1]], 39).iloc[0] == pytest.approx(1.22599, abs=1e-5)
    assert cdnow_bgnbd.predict_purchases(s, 39).sum() == pytest.approx(1653.41, abs=0.01)
    assert float(cdnow_bgnbd.expected_purchases_new_customer(39.0)) == pytest.approx(1.19501, abs=1e-5)


def test_calibration_holdout_matches_lifetimes(cdnow_transactions):
    ours = calibration_and_holdout_data(cdnow_transactions, "customer_id", "date", "amount",
                                        calibration_end="1997-09-30", observation_end="1998-06-30",
                                        time_unit="W")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = lt_calibration_and_holdout_data(
            cdnow_transactions, "customer_id", "date", calibration_period_end="1997-09-30",
            observation_period_end="1998-06-30", freq="D", freq_multiplier=7, monetary_value_col="amount",
        ).sort_index()
    for col in ["frequency_cal", "recency_cal", "T_cal", "monetary_value_cal", "frequency_holdout",
                "duration_holdout"]:
        np.testing.assert_allclose(ours[col].to_numpy(), ref[col].to_numpy(), rtol=1e-12, err_msg=col)
    assert ours["duration_holdout"].iloc[0] == pytest.approx(273 / 7)
    assert int(ours["frequency_holdout"].sum()) == 1882  # actual repeat purchase occasions in weeks 40-78
