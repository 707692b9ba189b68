"""Key customers from per-customer predictions: top value, high potential, high value at risk.

Each function takes a DataFrame indexed by customer id with prediction columns (for
example the output of the CLV models: ``clv``, ``probability_alive``, and past
``revenue_total`` from :func:`ecrm_analytics.features.customer_features`), and returns
the selected customers, best first, with a ``rank``. Thresholds are parameters; a
quantile threshold is computed over all customers passed in, and a customer exactly at
the threshold is selected.

* :func:`top_by_value` — the highest predicted value (top ``n`` or top ``share``).
* :func:`high_potential` — likely alive (``probability_alive >= min_probability_alive``)
  and high predicted spend (``spend >= its spend_quantile``): whom to grow.
* :func:`high_value_at_risk` — high past value (``past_value >= its value_quantile``)
  and unlikely alive (``probability_alive <= max_probability_alive``): whom to win back.
* :func:`key_customer_flags` — all three as boolean columns for every customer.

References
----------
Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005). RFM and CLV: using iso-value
curves for customer base analysis. *Journal of Marketing Research*, 42(4), 415-430.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ecrm_analytics._validation import AnalyticsInputError, require_columns, require_non_empty

__all__ = ["high_potential", "high_value_at_risk", "key_customer_flags", "top_by_value"]


def _checked(predictions: pd.DataFrame, numeric: list[str], probabilities: list[str]) -> pd.DataFrame:
    require_columns(predictions, numeric + probabilities, what="predictions")
    require_non_empty(predictions, what="predictions")
    if not predictions.index.is_unique:
        raise AnalyticsInputError("predictions must be indexed by unique customer ids")
    for col in numeric + probabilities:
        values = pd.to_numeric(predictions[col], errors="coerce")
        n_bad = int((~np.isfinite(values.to_numpy(dtype=float))).sum())
        if n_bad:
            raise AnalyticsInputError(f"column {col!r} has {n_bad} missing or non-numeric value(s)")
    for col in probabilities:
        p = predictions[col].astype(float)
        if ((p < 0) | (p > 1)).any():
            raise AnalyticsInputError(f"column {col!r} must hold probabilities in [0, 1]")
    return predictions


def _quantile(predictions: pd.DataFrame, col: str, q: float) -> float:
    if not 0 <= q <= 1:
        raise AnalyticsInputError(f"quantile must be in [0, 1], got {q!r}")
    return float(np.quantile(predictions[col].to_numpy(dtype=float), q))


def _ranked(df: pd.DataFrame, by: str) -> pd.DataFrame:
    out = df.sort_values(by, ascending=False, kind="stable").copy()
    out["rank"] = np.arange(1, len(out) + 1)
    return out


def top_by_value(
    predictions: pd.DataFrame, *, value_col: str = "clv", n: int | None = None, share: float | None = None
) -> pd.DataFrame:
    """The customers with the highest predicted value.

    Parameters
    ----------
    predictions : pandas.DataFrame
        Indexed by customer id.
    value_col : str
        Predicted value column (e.g. 12-month CLV).
    n : int, optional
        Keep this many customers.
    share : float, optional
        Keep this share of customers (rounded up), in (0, 1]. Give ``n`` or ``share``,
        not both; with neither, every customer is ranked.

    Returns
    -------
    pandas.DataFrame
        The selected rows, highest value first, with ``rank`` and ``value_share``
        (the cumulative share of the total predicted value they hold).

    Examples
    --------
    >>> import pandas as pd
    >>> p = pd.DataFrame({"clv": [10.0, 50.0, 30.0, 10.0]}, index=pd.Index(list("abcd"), name="customer_id"))
    >>> top_by_value(p, n=2)  # doctest: +NORMALIZE_WHITESPACE
                  clv  rank  value_share
    customer_id
    b            50.0     1          0.5
    c            30.0     2          0.8
    """
    _checked(predictions, [value_col], [])
    if n is not None and share is not None:
        raise AnalyticsInputError("give n or share, not both")
    ranked = _ranked(predictions, value_col)
    total = float(predictions[value_col].sum())
    ranked["value_share"] = ranked[value_col].cumsum() / total if total else np.nan
    if n is not None:
        if n < 1:
            raise AnalyticsInputError("n must be at least 1")
        ranked = ranked.head(int(n))
    elif share is not None:
        if not 0 < share <= 1:
            raise AnalyticsInputError("share must be in (0, 1]")
        ranked = ranked.head(int(np.ceil(share * len(predictions) - 1e-9)))
    return ranked


def high_potential(
    predictions: pd.DataFrame,
    *,
    spend_col: str = "clv",
    probability_alive_col: str = "probability_alive",
    min_probability_alive: float = 0.7,
    spend_quantile: float = 0.8,
) -> pd.DataFrame:
    """Customers likely alive with high predicted spend.

    Parameters
    ----------
    predictions : pandas.DataFrame
    spend_col : str
        Predicted spend or value column.
    probability_alive_col : str
    min_probability_alive : float
        Selected when ``probability_alive >= min_probability_alive``.
    spend_quantile : float
        Selected when ``spend >= quantile(spend, spend_quantile)`` over all customers.

    Returns
    -------
    pandas.DataFrame
        Selected rows by predicted spend, highest first, with ``rank``.

    Examples
    --------
    >>> import pandas as pd
    >>> p = pd.DataFrame({"clv": [100.0, 90.0, 10.0, 5.0], "probability_alive": [0.9, 0.4, 0.95, 0.8]},
    ...                  index=pd.Index(list("abcd"), name="customer_id"))
    >>> high_potential(p, spend_quantile=0.5).index.tolist()
    ['a']
    """
    _checked(predictions, [spend_col], [probability_alive_col])
    cut = _quantile(predictions, spend_col, spend_quantile)
    mask = (predictions[probability_alive_col] >= min_probability_alive) & (predictions[spend_col] >= cut)
    return _ranked(predictions[mask], spend_col)


def high_value_at_risk(
    predictions: pd.DataFrame,
    *,
    past_value_col: str = "revenue_total",
    probability_alive_col: str = "probability_alive",
    value_quantile: float = 0.8,
    max_probability_alive: float = 0.5,
) -> pd.DataFrame:
    """Customers with high past value who are unlikely to be alive.

    Parameters
    ----------
    predictions : pandas.DataFrame
    past_value_col : str
        Historical value (net revenue to date).
    probability_alive_col : str
    value_quantile : float
        Selected when ``past_value >= quantile(past_value, value_quantile)``.
    max_probability_alive : float
        Selected when ``probability_alive <= max_probability_alive``.

    Returns
    -------
    pandas.DataFrame
        Selected rows by past value, highest first, with ``rank``.

    Examples
    --------
    >>> import pandas as pd
    >>> p = pd.DataFrame({"revenue_total": [900.0, 800.0, 20.0], "probability_alive": [0.2, 0.9, 0.1]},
    ...                  index=pd.Index(list("abc"), name="customer_id"))
    >>> high_value_at_risk(p, value_quantile=0.5).index.tolist()
    ['a']
    """
    _checked(predictions, [past_value_col], [probability_alive_col])
    cut = _quantile(predictions, past_value_col, value_quantile)
    mask = (predictions[probability_alive_col] <= max_probability_alive) & (predictions[past_value_col] >= cut)
    return _ranked(predictions[mask], past_value_col)


def key_customer_flags(
    predictions: pd.DataFrame,
    *,
    value_col: str = "clv",
    past_value_col: str = "revenue_total",
    probability_alive_col: str = "probability_alive",
    top_share: float = 0.1,
    min_probability_alive: float = 0.7,
    spend_quantile: float = 0.8,
    value_quantile: float = 0.8,
    max_probability_alive: float = 0.5,
) -> pd.DataFrame:
    """Boolean flags ``top_value``, ``high_potential``, ``high_value_at_risk`` for every customer.

    The parameters are those of the three selection functions; ``value_col`` is used
    as the predicted spend for ``high_potential``.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``predictions``.

    Examples
    --------
    >>> import pandas as pd
    >>> p = pd.DataFrame({"clv": [100.0, 5.0], "revenue_total": [50.0, 900.0],
    ...                   "probability_alive": [0.9, 0.1]}, index=pd.Index(["a", "b"], name="customer_id"))
    >>> key_customer_flags(p, top_share=0.5, spend_quantile=0.5, value_quantile=0.5)  # doctest: +NORMALIZE_WHITESPACE
                 top_value  high_potential  high_value_at_risk
    customer_id
    a                 True            True               False
    b                False           False                True
    """
    idx = predictions.index
    top = top_by_value(predictions, value_col=value_col, share=top_share).index
    hp = high_potential(predictions, spend_col=value_col, probability_alive_col=probability_alive_col,
                        min_probability_alive=min_probability_alive, spend_quantile=spend_quantile).index
    risk = high_value_at_risk(predictions, past_value_col=past_value_col, probability_alive_col=probability_alive_col,
                              value_quantile=value_quantile, max_probability_alive=max_probability_alive).index
    return pd.DataFrame(
        {"top_value": idx.isin(top), "high_potential": idx.isin(hp), "high_value_at_risk": idx.isin(risk)},
        index=idx,
    )
