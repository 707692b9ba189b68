"""Gamma-Gamma spend model (Fader, Hardie & Lee 2005) and discounted CLV."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import digamma, gammaln

from .._validation import AnalyticsInputError, coerce_counts
from .base import MONTH_FACTORS, CLVModel, check_rfm_data

__all__ = ["GammaGammaModel", "customer_lifetime_value"]


class GammaGammaModel(CLVModel):
    """Gamma-Gamma model of the mean spend per repeat purchase.

    A customer's purchase amounts are ``Gamma(p, nu)`` (shape ``p``, rate ``nu``),
    so their mean spend is ``p / nu``; across customers ``nu ~ Gamma(q, gamma)``.
    It is fitted on repeat buyers only: ``frequency`` (number of repeat purchases,
    ``x``) and ``monetary_value`` (their mean amount, ``m``), as produced by
    :func:`ecrm_analytics.rfm.rfm_summary` with ``monetary="repeat"``. Customers with
    ``frequency == 0`` are skipped by :meth:`fit` (their ``monetary_value`` is 0 by
    convention and carries no information). The model assumes spend is independent
    of purchase frequency; ``fit_diagnostics_["frequency_spend_correlation"]`` reports
    the Pearson correlation so that the assumption can be checked.

    Parameters
    ----------
    time_unit, tol, maxiter, initial_params, aggregate
        As for :class:`ecrm_analytics.clv.BetaGeoModel` (``time_unit`` is unused).

    Notes
    -----
    The log-likelihood of the mean spend ``m`` of ``x`` purchases is (Fader & Hardie,
    note 025, eq. 1a, the form ``lifetimes`` uses)::

        lnG(px+q) - lnG(px) - lnG(q) + q ln(gamma) + (px-1) ln(m) + px ln(x) - (px+q) ln(gamma + m x)

    with an analytic gradient. The expected mean spend given ``(x, m)`` is
    ``(gamma + m x) p / (p x + q - 1)`` (note 025, eq. 5), which needs ``q > 1``.

    References
    ----------
    Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005). "RFM and CLV: using
    iso-value curves for customer base analysis". Journal of Marketing Research
    42(4), 415-430.
    Fader, P. S. and Hardie, B. G. S. (2013). "The Gamma-Gamma model of monetary
    value". http://brucehardie.com/notes/025/

    Examples
    --------
    >>> import pandas as pd
    >>> model = GammaGammaModel()
    >>> model.params_ = {"p": 6.25, "q": 3.74, "gamma": 15.44}
    >>> data = pd.DataFrame({"frequency": [0, 1, 6], "monetary_value": [0.0, 20.0, 55.0]})
    >>> model.expected_average_spend(data).round(2).tolist()
    [35.22, 24.64, 53.65]
    """

    param_names = ("p", "q", "gamma")
    min_repeat_customers = 20
    heterogeneity_params = {
        "p": "purchase amounts do not vary from one purchase to the next",
        "q": "mean spends do not differ between customers",
    }

    def _fitted_predictions(self, params, arrays):
        p, q, g = params
        x, m = arrays["x"], arrays["m"]
        weight = p * x / (p * x + q - 1.0)
        return (1.0 - weight) * g * p / (q - 1.0) + weight * m

    def _prepare(self, data: pd.DataFrame) -> dict[str, np.ndarray]:
        arrays = check_rfm_data(data, columns=("frequency", "monetary_value"))
        repeat = arrays["frequency"] > 0
        x, m = arrays["frequency"][repeat], arrays["monetary_value"][repeat]
        if (m <= 0).any():
            raise AnalyticsInputError(
                f"Gamma-Gamma needs a positive monetary_value for every repeat buyer; {int((m <= 0).sum())} "
                "have 0 (free orders only?); drop them or model them separately"
            )
        if len(x) < self.min_repeat_customers:
            raise AnalyticsInputError(
                f"Gamma-Gamma needs at least {self.min_repeat_customers} customers with a repeat purchase "
                f"(frequency > 0); the data has {len(x)}"
            )
        return {"x": x, "m": m}

    def _default_start(self):
        return np.zeros(3)

    def _extra_diagnostics(self, arrays):
        x, m, w = arrays["x"], arrays["m"], arrays["weights"]
        mx, mm = np.average(x, weights=w), np.average(m, weights=w)
        cov = np.average((x - mx) * (m - mm), weights=w)
        sd = np.sqrt(np.average((x - mx) ** 2, weights=w) * np.average((m - mm) ** 2, weights=w))
        return {
            "n_repeat_customers": int(round(float(w.sum()))),
            "frequency_spend_correlation": float(cov / sd) if sd > 0 else 0.0,
        }

    def _scaled(self, arrays, scale):
        # Everything but ln(gamma + m x) is fixed or depends on x alone: precompute the weighted
        # sums once, and evaluate the gamma functions per distinct x (a few dozen values).
        x, m = arrays["x"], arrays["m"]
        ux, inv = np.unique(x, return_inverse=True)
        log_m = np.log(m)
        return {"x": x, "m": m, "mx": m * x, "ux": ux, "inv": inv, "log_m": log_m,
                "x_log_mx": x * (log_m + np.log(x))}

    @staticmethod
    def _neg_ll_and_grad(log_params, arrays, weights):
        p, q, g = np.exp(log_params)
        if "ux" not in arrays:  # called without the per-fit precomputation (log_likelihood())
            arrays = GammaGammaModel._scaled(None, arrays, 1.0)
        x = arrays["x"]
        ux, inv, mx = arrays["ux"], arrays["inv"], arrays["mx"]
        wx = np.bincount(inv, weights=weights, minlength=len(ux))  # total weight per distinct x
        pux = p * ux
        w_total = float(np.sum(weights))
        sum_wx_log = float(np.sum(weights * arrays["x_log_mx"]))
        sum_w_logm = float(np.sum(weights * arrays["log_m"]))
        log_gmx = np.log(g + mx)
        wlog = weights * log_gmx
        sum_wlog, sum_wxlog = float(np.sum(wlog)), float(np.sum(wlog * x))
        ll = (np.sum(wx * (gammaln(pux + q) - gammaln(pux))) - w_total * (gammaln(q) - q * np.log(g))
              + p * sum_wx_log - sum_w_logm - p * sum_wxlog - q * sum_wlog)
        psi_pxq = digamma(pux + q)
        d_p = (np.sum(wx * ux * (psi_pxq - digamma(pux))) + sum_wx_log - sum_wxlog)
        d_q = np.sum(wx * psi_pxq) - w_total * (digamma(q) - np.log(g)) - sum_wlog
        d_g = w_total * q / g - float(np.sum(weights * (p * x + q) / (g + mx)))
        grad = np.array([d_p, d_q, d_g]) * np.array([p, q, g])
        return -float(ll), -grad

    def expected_average_spend(self, data: pd.DataFrame) -> pd.Series:
        """Expected mean spend per future purchase, given each customer's history.

        A weighted average of the population mean ``gamma p / (q - 1)`` and the
        customer's own ``monetary_value``, with weight ``p x / (p x + q - 1)`` on the
        latter; customers with ``frequency == 0`` get the population mean.

        Parameters
        ----------
        data : pandas.DataFrame
            ``frequency`` and ``monetary_value`` per customer.

        Returns
        -------
        pandas.Series
            Indexed like ``data``, named ``expected_average_spend``.
        """
        params = self._require_fitted()
        p, q, g = params["p"], params["q"], params["gamma"]
        if q <= 1:
            raise AnalyticsInputError(f"the fitted q={q:.4g} <= 1: the population mean spend is infinite")
        arrays = check_rfm_data(data, columns=("frequency", "monetary_value"))
        x, m = arrays["frequency"], arrays["monetary_value"]
        weight = p * x / (p * x + q - 1.0)
        value = (1.0 - weight) * g * p / (q - 1.0) + weight * m
        return pd.Series(value, index=data.index, name="expected_average_spend")

    def customer_lifetime_value(self, purchase_model: CLVModel, data: pd.DataFrame, **kwargs) -> pd.Series:
        """Shortcut for :func:`customer_lifetime_value` with this spend model."""
        return customer_lifetime_value(purchase_model, self, data, **kwargs)


def customer_lifetime_value(
    purchase_model: CLVModel,
    spend_model: GammaGammaModel,
    data: pd.DataFrame,
    *,
    months: int = 12,
    discount_rate: float = 0.01,
    time_unit: str | None = None,
) -> pd.Series:
    """Discounted expected value of each customer's purchases over the next ``months``.

    ``CLV = sum_{i=1..months} spend * (E[Y(i * f)] - E[Y((i-1) * f)]) / (1 + d) ** i``,
    where ``E[Y(t)]`` is the purchase model's conditional expected number of
    purchases by ``t``, ``spend`` the Gamma-Gamma expected average spend, ``d`` the
    monthly discount rate and ``f`` the number of model time units per month (30
    days, 4.345 weeks). Cash flows of month ``i`` are discounted as if received at
    its end. This is the computation of ``lifetimes``' ``customer_lifetime_value``.

    Parameters
    ----------
    purchase_model : BetaGeoModel or ParetoNBDModel
        Fitted purchase model.
    spend_model : GammaGammaModel
        Fitted spend model.
    data : pandas.DataFrame
        ``frequency``, ``recency``, ``T`` and ``monetary_value`` per customer.
    months : int
        Horizon in months.
    discount_rate : float
        Monthly discount rate (0.01 is about 12.7% a year).
    time_unit : {"D", "W", "M", "H"}, optional
        Unit of ``recency``/``T``; default: the purchase model's ``time_unit``.

    Returns
    -------
    pandas.Series
        Indexed like ``data``, named ``clv``, in the currency of ``monetary_value``.

    References
    ----------
    Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005). "RFM and CLV: using
    iso-value curves for customer base analysis". Journal of Marketing Research
    42(4), 415-430.

    Examples
    --------
    >>> import pandas as pd
    >>> from ecrm_analytics.clv import BetaGeoModel
    >>> bg = BetaGeoModel(time_unit="W")
    >>> bg.params_ = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    >>> gg = GammaGammaModel()
    >>> gg.params_ = {"p": 6.25, "q": 3.74, "gamma": 15.44}
    >>> data = pd.DataFrame({"frequency": [2.0], "recency": [30.43], "T": [38.86],
    ...                      "monetary_value": [22.35]})
    >>> customer_lifetime_value(bg, gg, data, months=12).round(2).tolist()
    [36.29]
    """
    unit = time_unit or purchase_model.config["time_unit"]
    if unit not in MONTH_FACTORS:
        raise AnalyticsInputError(f"time_unit must be one of {sorted(MONTH_FACTORS)}, got {unit!r}")
    if int(months) != months or months < 1:
        raise AnalyticsInputError(f"months must be a positive whole number, got {months!r}")
    d = float(coerce_counts(np.atleast_1d(discount_rate), name="discount_rate")[0])
    arrays = check_rfm_data(data, columns=("frequency", "recency", "T", "monetary_value"))
    spend = spend_model.expected_average_spend(data).to_numpy()
    x, t_x, T = arrays["frequency"], arrays["recency"], arrays["T"]
    factor = MONTH_FACTORS[unit]
    clv = np.zeros(len(data))
    previous = np.zeros(len(data))
    for i in range(1, int(months) + 1):
        cumulative = purchase_model._conditional_expected(i * factor, x, t_x, T)
        clv += spend * (cumulative - previous) / (1.0 + d) ** i
        previous = cumulative
    return pd.Series(clv, index=data.index, name="clv")
