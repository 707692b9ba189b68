"""Pareto/NBD purchase model (Schmittlein, Morrison & Colombo 1987)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit, gammaln

from .._validation import AnalyticsInputError, coerce_counts
from .base import CLVModel, check_rfm_data
from .bgnbd import _log_hyp2f1

__all__ = ["ParetoNBDModel"]


def _log_A0(r, alpha, s, beta, x, t_x, T):
    """log A0 of Fader & Hardie's note 009 (eqs. 19-20), evaluated in log space.

    A0 = 2F1(k, m; k+1; z1) / q1^k - 2F1(k, m; k+1; z2) / q2^k with k = r+s+x and,
    for alpha >= beta, m = s+1, q = alpha + t (t = t_x, T), z = (alpha-beta)/q; for
    alpha < beta the roles swap (m = r+x, q = beta + t). The difference is taken as
    log F1 + log(-expm1(log F2 - log F1)), so there is no overflow for large k and no
    loss when t_x is far below T. A0 = 0 (log = -inf) when t_x == T.
    """
    k = r + s + x
    if alpha >= beta:
        big, m = alpha, s + 1.0
    else:
        big, m = beta, r + x
    gap = abs(alpha - beta)
    q1, q2 = big + t_x, big + T
    with np.errstate(divide="ignore", invalid="ignore"):
        log_f1 = _log_hyp2f1(k, m, k + 1.0, gap / q1) - k * np.log(q1)
        log_f2 = _log_hyp2f1(k, m, k + 1.0, gap / q2) - k * np.log(q2)
        diff = np.minimum(log_f2 - log_f1, 0.0)
        return log_f1 + np.log(-np.expm1(diff))


def _pnbd_ll(params, x, t_x, T):
    r, alpha, s, beta = params
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    alive_branch = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    dead_branch = np.log(s) - np.log(r + s + x) + _log_A0(r, alpha, s, beta, x, t_x, T)
    return a1 + np.logaddexp(alive_branch, dead_branch)


class ParetoNBDModel(CLVModel):
    """Pareto/NBD model of repeat purchasing ("Counting your customers").

    While alive a customer buys as a Poisson process with rate ``lambda``; their
    lifetime is exponential with rate ``mu``. Across customers
    ``lambda ~ Gamma(r, alpha)`` and ``mu ~ Gamma(s, beta)`` (shapes ``r``, ``s``;
    rates ``alpha``, ``beta``). Fitted on ``frequency``, ``recency`` and ``T``.

    Parameters
    ----------
    time_unit, tol, maxiter, initial_params, aggregate
        As for :class:`ecrm_analytics.clv.BetaGeoModel`.

    Notes
    -----
    The likelihood is eq. (18) of Fader & Hardie's note 009 with the Gauss
    hypergeometric terms A0 of eqs. (19)-(20), evaluated with
    :func:`scipy.special.hyp2f1` (Euler's transformation as a fallback where it
    overflows) and combined in log space; this is the evaluation ``lifetimes``
    uses, made overflow-safe. The gradient is by central differences on
    log-parameters (analytic derivatives of 2F1 in its parameters are not worth
    their cost here); with aggregation a CDNOW-sized fit takes well under a second.

    References
    ----------
    Schmittlein, D. C., Morrison, D. G. and Colombo, R. (1987). "Counting your
    customers: who are they and what will they do next?". Management Science 33(1),
    1-24.
    Fader, P. S. and Hardie, B. G. S. (2005). "A note on deriving the Pareto/NBD
    model and related expressions". http://brucehardie.com/notes/009/

    Examples
    --------
    >>> import pandas as pd
    >>> model = ParetoNBDModel(time_unit="W")
    >>> model.params_ = {"r": 0.5533, "alpha": 10.5776, "s": 0.6061, "beta": 11.6650}
    >>> history = pd.DataFrame({"frequency": [0, 2, 7], "recency": [0.0, 30.43, 35.0], "T": [38.86] * 3})
    >>> model.probability_alive(history).round(3).tolist()
    [0.295, 0.869, 0.936]
    """

    param_names = ("r", "alpha", "s", "beta")
    heterogeneity_params = {"r": "purchase rates do not differ between customers"}

    def _fitted_predictions(self, params, arrays):
        return self._conditional_expected(float(arrays["T"].max()) or 1.0, arrays["x"], arrays["t_x"], arrays["T"])

    def _prepare(self, data: pd.DataFrame) -> dict[str, np.ndarray]:
        arrays = check_rfm_data(data)
        n_repeat = int(np.count_nonzero(arrays["frequency"] > 0))
        if n_repeat < self.min_repeat_customers:
            raise AnalyticsInputError(
                f"Pareto/NBD needs at least {self.min_repeat_customers} customers with a repeat purchase "
                f"(frequency > 0); the data has {n_repeat} of {len(data)}"
            )
        return {"x": arrays["frequency"], "t_x": arrays["recency"], "T": arrays["T"]}

    def _time_scale(self, arrays) -> float:
        return 1.0 / float(arrays["T"].max()) if arrays["T"].max() > 0 else 1.0

    def _scaled(self, arrays, scale):
        return {"x": arrays["x"], "t_x": arrays["t_x"] * scale, "T": arrays["T"] * scale}

    def _unscale(self, params, scale):
        r, alpha, s, beta = params
        return np.array([r, alpha / scale, s, beta / scale])

    def _default_start(self):
        return np.zeros(4)

    @staticmethod
    def _neg_ll(log_params, arrays, weights):
        ll = _pnbd_ll(np.exp(log_params), arrays["x"], arrays["t_x"], arrays["T"])
        if not np.all(np.isfinite(ll)):
            return np.inf
        return -float(weights @ ll)

    @classmethod
    def _neg_ll_and_grad(cls, log_params, arrays, weights):
        value = cls._neg_ll(log_params, arrays, weights)
        grad = np.empty(4)
        h = 1e-6
        for i in range(4):
            step = np.zeros(4)
            step[i] = h
            grad[i] = (cls._neg_ll(log_params + step, arrays, weights)
                       - cls._neg_ll(log_params - step, arrays, weights)) / (2 * h)
        if not np.all(np.isfinite(grad)):
            grad = np.zeros(4) if np.isfinite(value) else grad
        return value, grad

    # --- predictions ----------------------------------------------------------------
    def _parts(self, data):
        arrays = check_rfm_data(data)
        params = self._require_fitted()
        return [params[k] for k in self.param_names], arrays["frequency"], arrays["recency"], arrays["T"]

    @staticmethod
    def _p_alive(params, x, t_x, T):
        r, alpha, s, beta = params
        log_odds = (np.log(s) - np.log(r + s + x) + (r + x) * np.log(alpha + T) + s * np.log(beta + T)
                    + _log_A0(r, alpha, s, beta, x, t_x, T))
        return expit(-log_odds)

    def probability_alive(self, data: pd.DataFrame) -> pd.Series:
        """Probability that each customer is alive at ``T`` (note 009, eq. 37).

        Parameters
        ----------
        data : pandas.DataFrame
            ``frequency``, ``recency``, ``T`` per customer.

        Returns
        -------
        pandas.Series
            Indexed like ``data``, named ``probability_alive``.
        """
        params, x, t_x, T = self._parts(data)
        return pd.Series(self._p_alive(params, x, t_x, T), index=data.index, name="probability_alive")

    def _conditional_expected(self, t, x, t_x, T):
        params = [self._require_fitted()[k] for k in self.param_names]
        r, alpha, s, beta = params
        t = float(coerce_counts(np.atleast_1d(t), name="t")[0])
        ratio_log = np.log((beta + T + t) / (beta + T))
        # (1 - ((beta+T)/(beta+T+t))^(s-1)) / (s-1), with its limit ln(...) at s = 1
        if abs(s - 1.0) < 1e-9:
            growth = ratio_log
        else:
            growth = -np.expm1(-(s - 1.0) * ratio_log) / (s - 1.0)
        return self._p_alive(params, x, t_x, T) * (r + x) * (beta + T) / (alpha + T) * growth

    def predict_purchases(self, data: pd.DataFrame, t: float) -> pd.Series:
        """Expected repeat purchases in the next ``t`` time units (note 009, eq. 41).

        Parameters
        ----------
        data : pandas.DataFrame
            ``frequency``, ``recency``, ``T`` per customer.
        t : float
            Horizon in the model's time unit.

        Returns
        -------
        pandas.Series
            Indexed like ``data``, named ``expected_purchases``.
        """
        _, x, t_x, T = self._parts(data)
        return pd.Series(self._conditional_expected(t, x, t_x, T), index=data.index, name="expected_purchases")

    def expected_purchases_new_customer(self, t: float | np.ndarray) -> np.ndarray:
        """Expected repeat purchases in ``(0, t]`` for a new customer (note 009, eq. 27).

        Parameters
        ----------
        t : float or numpy.ndarray
            Time since the first purchase.

        Returns
        -------
        numpy.ndarray
        """
        r, alpha, s, beta = (self._require_fitted()[k] for k in self.param_names)
        t = np.asarray(t, dtype="float64")
        return r * beta / (alpha * (s - 1.0)) * (1.0 - (beta / (beta + t)) ** (s - 1.0))
