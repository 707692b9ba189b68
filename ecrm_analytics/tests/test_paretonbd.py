"""ParetoNBDModel: likelihood pieces, predictions, bad input, save/load."""

from __future__ import annotations

import numpy as np
import pytest

from ecrm_analytics import AnalyticsInputError
from ecrm_analytics.clv import ParetoNBDModel
from ecrm_analytics.clv.paretonbd import _log_A0, _pnbd_ll

from .conftest import history

PUBLISHED = {"r": 0.5533, "alpha": 10.5776, "s": 0.6061, "beta": 11.6650}


@pytest.mark.parametrize("alpha,beta", [(10.58, 11.67), (11.67, 10.58), (3.0, 3.0)])
def test_likelihood_equals_the_direct_integral(alpha, beta):
    """The 2F1 closed form equals integrating the individual likelihood over lambda and mu numerically."""
    r, s = 0.55, 0.61
    x, t_x, T = 3.0, 20.0, 38.0
    from scipy.special import gammaln

    def integrand_mu_lam(lam, mu):
        # P(x, t_x, T | lambda, mu) = lam^x e^{-(lam+mu)T} + lam^x mu/(lam+mu) (e^{-(lam+mu)t_x} - e^{-(lam+mu)T})
        lik = lam**x * np.exp(-(lam + mu) * T) + lam**x * mu / (lam + mu) * (
            np.exp(-(lam + mu) * t_x) - np.exp(-(lam + mu) * T))
        g_lam = np.exp(r * np.log(alpha) + (r - 1) * np.log(lam) - alpha * lam - gammaln(r))
        g_mu = np.exp(s * np.log(beta) + (s - 1) * np.log(mu) - beta * mu - gammaln(s))
        return lik * g_lam * g_mu

    from scipy.integrate import dblquad

    direct, _ = dblquad(integrand_mu_lam, 0, np.inf, 0, np.inf, epsabs=1e-14, epsrel=1e-9)
    closed = np.exp(_pnbd_ll((r, alpha, s, beta), np.array([x]), np.array([t_x]), np.array([T])))[0]
    assert closed == pytest.approx(direct, rel=1e-5)


def test_A0_is_zero_when_the_last_purchase_is_at_T():
    assert _log_A0(0.5, 10.0, 0.6, 11.0, np.array([2.0]), np.array([30.0]), np.array([30.0]))[0] == -np.inf
    ll = _pnbd_ll((0.5, 10.0, 0.6, 11.0), np.array([2.0]), np.array([30.0]), np.array([30.0]))
    assert np.isfinite(ll).all()


def test_likelihood_is_finite_for_heavy_buyers():
    ll = _pnbd_ll(tuple(PUBLISHED.values()), np.array([500.0, 2000.0]), np.array([70.0, 300.0]),
                  np.array([78.0, 310.0]))
    assert np.isfinite(ll).all()


def test_predictions():
    model = ParetoNBDModel(time_unit="W")
    model.params_ = dict(PUBLISHED)
    h = history([(0, 0.0, 38.86), (2, 30.43, 38.86), (2, 1.0, 38.86), (7, 38.86, 38.86)])
    alive = model.probability_alive(h).to_numpy()
    assert alive[3] == 1.0  # bought on the last day: certainly alive
    assert alive[2] < alive[0] < alive[1] < 1.0
    e = model.predict_purchases(h, 39).to_numpy()
    assert np.all(e > 0) and e[3] > e[1] > e[2]
    # unconditional mean for a new customer, note 009 eq. 27, and the conditional one at T=0 agree
    h0 = history([(0, 0.0, 0.0)])
    assert model.predict_purchases(h0, 39).iloc[0] == pytest.approx(
        float(model.expected_purchases_new_customer(39.0)), rel=1e-12)
    r, a, s, b = PUBLISHED.values()
    assert float(model.expected_purchases_new_customer(39.0)) == pytest.approx(
        r * b / (a * (s - 1)) * (1 - (b / (b + 39)) ** (s - 1)), rel=1e-14)


def test_s_equal_to_one_uses_the_limit():
    near, at = ParetoNBDModel(), ParetoNBDModel()
    near.params_ = {"r": 0.5, "alpha": 10.0, "s": 1.0 + 1e-7, "beta": 11.0}
    at.params_ = {"r": 0.5, "alpha": 10.0, "s": 1.0, "beta": 11.0}
    h = history([(2, 30.0, 38.0)])
    assert at.predict_purchases(h, 20).iloc[0] == pytest.approx(near.predict_purchases(h, 20).iloc[0], rel=1e-5)


def test_too_few_repeat_buyers_are_refused():
    with pytest.raises(AnalyticsInputError, match="Pareto/NBD needs at least 20"):
        ParetoNBDModel().fit(history([(0, 0.0, 10.0)] * 100 + [(1, 3.0, 10.0)] * 5))


def test_save_and_load_round_trip(tmp_path, cdnow_summary, cdnow_paretonbd):
    cdnow_paretonbd.save(tmp_path / "p.json")
    loaded = ParetoNBDModel.load(tmp_path / "p.json")
    assert loaded.params_ == cdnow_paretonbd.params_
    assert loaded.fit_diagnostics_["log_likelihood"] == pytest.approx(-9594.976, abs=1e-3)
    np.testing.assert_array_equal(loaded.probability_alive(cdnow_summary).to_numpy(),
                                  cdnow_paretonbd.probability_alive(cdnow_summary).to_numpy())

