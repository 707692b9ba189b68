"""What every lifetime-value model shares: config -> fit -> predict -> save/load.

A model is configured in its constructor (optimiser tolerance, starting values,
the time unit of its data), fitted on a per-customer summary DataFrame (the output
of :func:`ecrm_analytics.rfm.rfm_summary`), and then predicts per customer, with
results indexed like the input. ``save``/``load`` round-trip a small JSON document
holding the model name, config, fitted parameters and fit diagnostics: no pickles,
so a stored model can be read by anything and cannot run code when loaded.

Fitting is maximum likelihood on log-parameters with
:func:`scipy.optimize.minimize` (L-BFGS-B), after rescaling time so that the oldest
customer has ``T = 1`` (the rate parameters are rescaled back afterwards). This
keeps the problem well conditioned whatever the time unit. Identical customer
histories are aggregated into one row with a weight before fitting (the
log-likelihood is a weighted sum), which makes data measured in whole days much
cheaper to fit.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from .._validation import AnalyticsInputError, coerce_counts, require_columns, require_non_empty

__all__ = ["CLVModel", "ConvergenceError", "check_rfm_data", "aggregate_rows", "MONTH_FACTORS"]

#: Model time units per month, as in lifetimes' ``customer_lifetime_value``
#: (a month is 30 days or 4.345 weeks).
MONTH_FACTORS = {"D": 30.0, "W": 4.345, "M": 1.0, "H": 30.0 * 24.0}

_FORMAT_VERSION = 1


class ConvergenceError(AnalyticsInputError):
    """The optimiser did not converge; the data probably cannot identify the model."""


def check_rfm_data(
    data: pd.DataFrame, *, columns=("frequency", "recency", "T"), what: str = "data"
) -> dict[str, np.ndarray]:
    """Validate a customer summary and return its columns as float arrays.

    Checks: a non-empty DataFrame, the columns present, no NaN or infinite values,
    no negatives, integer frequencies, ``recency <= T`` and ``recency == 0`` when
    ``frequency == 0``.

    Parameters
    ----------
    data : pandas.DataFrame
        Per-customer summary.
    columns : tuple of str
        Columns to check (any of ``frequency``, ``recency``, ``T``, ``monetary_value``).
    what : str
        How to call ``data`` in messages.

    Returns
    -------
    dict of str to numpy.ndarray

    Examples
    --------
    >>> import pandas as pd
    >>> check_rfm_data(pd.DataFrame({"frequency": [1], "recency": [5.0], "T": [4.0]}))
    Traceback (most recent call last):
    ...
    ecrm_analytics._validation.AnalyticsInputError: data has 1 customer(s) with recency > T (the last purchase after the observation end), e.g. index 0: recency=5, T=4
    """
    require_columns(data, list(columns), what=what)
    require_non_empty(data, what=what)
    arrays = {c: coerce_counts(data[c], name=c) for c in columns}
    if "frequency" in arrays:
        f = arrays["frequency"]
        if np.any(f != np.round(f)):
            raise AnalyticsInputError("column 'frequency' must hold whole numbers of repeat purchases")
    if "recency" in arrays and "T" in arrays:
        rec, T = arrays["recency"], arrays["T"]
        bad = rec > T * (1 + 1e-12)
        if bad.any():
            i = int(np.argmax(bad))
            raise AnalyticsInputError(
                f"{what} has {int(bad.sum())} customer(s) with recency > T (the last purchase after the "
                f"observation end), e.g. index {data.index[i]!r}: recency={rec[i]:g}, T={T[i]:g}"
            )
        if "frequency" in arrays:
            bad = (arrays["frequency"] == 0) & (rec != 0)
            if bad.any():
                raise AnalyticsInputError(
                    f"{what} has {int(bad.sum())} customer(s) with frequency 0 but recency != 0; "
                    "recency is the time between the first and the last purchase"
                )
    return arrays


def aggregate_rows(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Collapse identical rows of ``columns`` into unique rows and their counts.

    Examples
    --------
    >>> import numpy as np
    >>> (x, t), w = aggregate_rows(np.array([1., 1., 2.]), np.array([3., 3., 3.]))
    >>> x.tolist(), t.tolist(), w.tolist()
    ([1.0, 2.0], [3.0, 3.0], [2.0, 1.0])
    """
    frame = pd.DataFrame({i: c for i, c in enumerate(columns)})
    grouped = frame.groupby(list(frame.columns), sort=True).size()
    keys = grouped.index
    if len(columns) == 1:
        uniq = [np.asarray(keys, dtype="float64")]
    else:
        uniq = [np.asarray(keys.get_level_values(i), dtype="float64") for i in range(len(columns))]
    return uniq, grouped.to_numpy().astype("float64")


class CLVModel:
    """Base class: configuration, fitting loop, diagnostics and JSON persistence.

    Subclasses set ``param_names``, implement ``_prepare`` (validated arrays from a
    DataFrame), ``_neg_ll_and_grad`` (on log-parameters, scaled time) and
    ``_unscale`` (parameters back in data time units).
    """

    param_names: ClassVar[tuple[str, ...]] = ()
    #: Fewest customers with at least one repeat purchase a fit accepts. Below it the
    #: parameters that govern repeat behaviour are not identified in practice.
    min_repeat_customers: ClassVar[int] = 20

    def __init__(
        self,
        *,
        time_unit: str = "D",
        tol: float = 1e-10,
        maxiter: int = 1000,
        initial_params: dict[str, float] | None = None,
        aggregate: bool = True,
    ) -> None:
        if time_unit not in MONTH_FACTORS:
            raise AnalyticsInputError(f"time_unit must be one of {sorted(MONTH_FACTORS)}, got {time_unit!r}")
        self.config: dict[str, Any] = {
            "time_unit": time_unit,
            "tol": float(tol),
            "maxiter": int(maxiter),
            "initial_params": dict(initial_params) if initial_params else None,
            "aggregate": bool(aggregate),
        }
        self.params_: dict[str, float] | None = None
        self.fit_diagnostics_: dict[str, Any] = {}

    # --- subclass hooks -------------------------------------------------------------
    def _prepare(self, data: pd.DataFrame) -> dict[str, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _neg_ll_and_grad(self, log_params, arrays, weights):  # pragma: no cover - abstract
        raise NotImplementedError

    def _time_scale(self, arrays) -> float:
        return 1.0

    def _scaled(self, arrays, scale):
        return arrays

    def _unscale(self, params: np.ndarray, scale: float) -> np.ndarray:
        return params

    def _default_start(self) -> np.ndarray:
        return np.ones(len(self.param_names))

    def _extra_diagnostics(self, arrays) -> dict[str, Any]:
        return {}

    # --- public API -----------------------------------------------------------------
    def fit(self, data: pd.DataFrame, weights: np.ndarray | pd.Series | None = None):
        """Fit by maximum likelihood; returns ``self``.

        Parameters
        ----------
        data : pandas.DataFrame
            Per-customer summary (see the subclass for the columns).
        weights : array-like, optional
            Number of customers each row stands for (for data already aggregated).

        Returns
        -------
        self
        """
        started = time.perf_counter()
        arrays = self._prepare(data)
        n_rows = len(next(iter(arrays.values())))
        if weights is not None:
            w = coerce_counts(weights, name="weights")
            if len(w) != n_rows:
                raise AnalyticsInputError(f"weights has {len(w)} values for {n_rows} rows")
        else:
            w = np.ones(n_rows)
        if self.config["aggregate"]:
            names = list(arrays)
            uniq, counts = aggregate_rows(*(arrays[k] for k in names), *( [w] if weights is not None else []))
            arrays = dict(zip(names, uniq[: len(names)], strict=True))
            w = counts * (uniq[len(names)] if weights is not None else 1.0)
        scale = self._time_scale(arrays)
        scaled = self._scaled(arrays, scale)
        start = self._start(scale)
        total_w = float(w.sum())

        def objective(theta):
            value, grad = self._neg_ll_and_grad(theta, scaled, w)
            return value / total_w, grad / total_w

        res, how = self._minimise(objective, start)
        if not np.all(np.isfinite(res.x)):
            raise ConvergenceError(
                f"{type(self).__name__} did not converge ({res.message}); the data may not identify the "
                "model (too few repeat purchases, or a degenerate sample)"
            )
        params = self._unscale(np.exp(res.x), scale)
        self._check_heterogeneity(params, arrays)
        if not res.converged:
            raise ConvergenceError(
                f"{type(self).__name__} did not converge ({res.message}); the data may not identify the "
                "model (too few repeat purchases, or a degenerate sample)"
            )
        self.params_ = {k: float(v) for k, v in zip(self.param_names, params, strict=True)}
        # log-likelihood in the original time units: scaling time by c multiplies each
        # customer's density by c ** -(number of timed events); recompute instead of
        # correcting, so the figure is comparable with other implementations.
        ll = -self._neg_ll_and_grad(np.log(params), arrays, w)[0]
        self.fit_diagnostics_ = {
            "log_likelihood": float(ll),
            "n_customers": int(round(total_w)),
            "n_rows_fitted": int(n_rows if not self.config["aggregate"] else len(w)),
            "iterations": int(res.nit),
            "function_evaluations": int(res.nfev),
            "converged": bool(res.converged),
            "message": str(res.message),
            "gradient_norm": float(np.max(np.abs(res.jac))),
            "fit_seconds": round(time.perf_counter() - started, 4),
            "optimizer": how,
            **self._extra_diagnostics(arrays | {"weights": w}),
        }
        return self

    def _minimise(self, objective, start: np.ndarray):
        """Minimise ``objective`` (mean negative log-likelihood and its gradient) on log-parameters.

        L-BFGS-B first. Its line search sometimes stops ("ABNORMAL_TERMINATION_IN_LNSRCH")
        at or next to the optimum, where rounding makes the gradient inconsistent with the
        function (typically when a parameter drifts along a flat ridge). Then the fit is
        retried: Nelder-Mead (no gradient, so no line search) from the best point, then
        L-BFGS-B again to polish. The lowest finite objective wins, and it counts as
        converged if one of the methods reported convergence there or its largest
        gradient component (per customer, on log-parameters) is below 1e-4.

        Returns
        -------
        (scipy.optimize.OptimizeResult, str)
            The chosen result, with ``converged`` set, and a description of the method.
        """
        opts = {"maxiter": self.config["maxiter"], "ftol": self.config["tol"], "gtol": 1e-9}
        with np.errstate(all="ignore"):
            res = minimize(objective, start, jac=True, method="L-BFGS-B", options=opts)
            res.converged = bool(res.success and np.isfinite(res.fun))
            if res.converged:
                return res, "L-BFGS-B on log-parameters"
            candidates = [(res, "L-BFGS-B on log-parameters")]
            origin = res.x if np.isfinite(res.fun) and np.all(np.isfinite(res.x)) else start
            nm = minimize(
                lambda theta: objective(theta)[0], origin, method="Nelder-Mead",
                options={"maxiter": 400 * len(start), "xatol": 1e-9, "fatol": 1e-14},
            )
            nm.jac = objective(nm.x)[1]
            candidates.append((nm, "L-BFGS-B, then Nelder-Mead on log-parameters"))
            if np.isfinite(nm.fun):
                polish = minimize(objective, nm.x, jac=True, method="L-BFGS-B", options=opts)
                candidates.append((polish, "L-BFGS-B, then Nelder-Mead, then L-BFGS-B on log-parameters"))
        finite = [(r, h) for r, h in candidates if np.isfinite(r.fun) and np.all(np.isfinite(r.x))]
        if not finite:
            res.converged = False
            return res, candidates[0][1]
        best_fun = min(r.fun for r, _ in finite)
        best, how = next((r, h) for r, h in finite if r.fun == best_fun)
        at_best = [r for r, _ in finite if r.success and r.fun <= best_fun + 1e-12 * max(1.0, abs(best_fun))]
        grad = np.asarray(best.jac, dtype="float64")
        best.converged = bool(at_best) or bool(np.all(np.isfinite(grad)) and np.max(np.abs(grad)) <= 1e-4)
        if best.converged and not best.success:
            best.message = f"{best.message} (accepted: largest gradient component {np.max(np.abs(grad)):.2g})"
        return best, how

    #: Shape parameters that measure how much customers differ, with what they govern. A
    #: value beyond :attr:`max_heterogeneity_shape` means that variation has vanished
    #: (coefficient of variation below 1%): the fit ran off to the edge of the model.
    heterogeneity_params: ClassVar[dict[str, str]] = {}
    max_heterogeneity_shape: ClassVar[float] = 1e4

    def _fitted_predictions(self, params: np.ndarray, arrays) -> np.ndarray:
        """Predictions on the fitted rows, checked for finiteness after a fit."""
        return np.zeros(0)

    def _check_heterogeneity(self, params: np.ndarray, arrays) -> None:
        """Refuse a fit whose parameters ran off to the model's edge or whose predictions are not finite."""
        named = dict(zip(self.param_names, params, strict=True))
        shown = ", ".join(f"{k}={v:.4g}" for k, v in named.items())
        problems = [
            f"{k}={named[k]:.4g} > {self.max_heterogeneity_shape:g} ({what})"
            for k, what in self.heterogeneity_params.items()
            if not named[k] <= self.max_heterogeneity_shape
        ]
        if not np.all(np.isfinite(params)):
            problems.append("some parameters are not finite")
        if not problems:
            previous, self.params_ = self.params_, {k: float(v) for k, v in named.items()}
            try:
                with np.errstate(all="ignore"):
                    predicted = np.asarray(self._fitted_predictions(params, arrays), dtype="float64")
            finally:
                self.params_ = previous
            if not np.all(np.isfinite(predicted)):
                problems.append(f"{int((~np.isfinite(predicted)).sum())} predictions on the data are not finite")
        if problems:
            raise AnalyticsInputError(
                f"the data show no heterogeneity between customers: {type(self).__name__} ran off to "
                f"degenerate parameters ({shown}): {'; '.join(problems)}. The model cannot be fitted to "
                "customers who all behave alike; check the data (e.g. generated or test orders), or use "
                "plain averages instead"
            )

    def _start(self, scale: float) -> np.ndarray:
        init = self.config["initial_params"]
        if not init:
            return self._default_start()
        vals = np.array([float(init[k]) for k in self.param_names])
        if (vals <= 0).any():
            raise AnalyticsInputError("initial_params must all be positive")
        # initial params are given in data units: scale them like the fitted ones
        return np.log(self._unscale(vals, 1.0 / scale))

    def _require_fitted(self) -> dict[str, float]:
        if self.params_ is None:
            raise AnalyticsInputError(f"{type(self).__name__} is not fitted: call fit() or load() first")
        return self.params_

    @property
    def params(self) -> pd.Series:
        """Fitted parameters as a Series (in data time units)."""
        return pd.Series(self._require_fitted(), name="value")

    def log_likelihood(self, data: pd.DataFrame) -> float:
        """Total log-likelihood of ``data`` under the fitted parameters.

        Parameters
        ----------
        data : pandas.DataFrame
            Per-customer summary, same columns as for :meth:`fit`.

        Returns
        -------
        float
        """
        params = self._require_fitted()
        arrays = self._prepare(data)
        w = np.ones(len(next(iter(arrays.values()))))
        theta = np.log([params[k] for k in self.param_names])
        return float(-self._neg_ll_and_grad(theta, arrays, w)[0])

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able document :meth:`save` writes."""
        return {
            "model": type(self).__name__,
            "format_version": _FORMAT_VERSION,
            "config": self.config,
            "params": self._require_fitted(),
            "fit_diagnostics": self.fit_diagnostics_,
        }

    def save(self, path: str | Path) -> None:
        """Write the model as JSON (config, parameters, fit diagnostics).

        Parameters
        ----------
        path : str or pathlib.Path
            Destination file.
        """
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True))

    @classmethod
    def from_dict(cls, doc: dict[str, Any]):
        """Rebuild a model from :meth:`to_dict` output."""
        if doc.get("model") != cls.__name__:
            raise AnalyticsInputError(f"this file holds a {doc.get('model')!r}, not a {cls.__name__}")
        if doc.get("format_version") != _FORMAT_VERSION:
            raise AnalyticsInputError(f"unsupported model format version {doc.get('format_version')!r}")
        model = cls(**doc["config"])
        missing = set(cls.param_names) - set(doc["params"])
        if missing:
            raise AnalyticsInputError(f"model file lacks parameter(s) {sorted(missing)}")
        model.params_ = {k: float(doc["params"][k]) for k in cls.param_names}
        model.fit_diagnostics_ = dict(doc.get("fit_diagnostics") or {})
        return model

    @classmethod
    def load(cls, path: str | Path):
        """Read a model written by :meth:`save`.

        Parameters
        ----------
        path : str or pathlib.Path
            Source file.

        Returns
        -------
        CLVModel
            A fitted model of class ``cls``.
        """
        try:
            doc = json.loads(Path(path).read_text())
        except json.JSONDecodeError as exc:
            raise AnalyticsInputError(f"{path} is not a saved model (invalid JSON: {exc})") from exc
        return cls.from_dict(doc)

    def __repr__(self) -> str:
        if self.params_ is None:
            return f"<{type(self).__name__} (not fitted)>"
        shown = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
        return f"<{type(self).__name__} {shown}>"


def as_index(data: pd.DataFrame) -> pd.Index:
    """The customer index predictions are returned with."""
    return data.index


def summary_arrays(data: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``frequency``, ``recency``, ``T`` as validated float arrays."""
    a = check_rfm_data(data)
    return a["frequency"], a["recency"], a["T"]
