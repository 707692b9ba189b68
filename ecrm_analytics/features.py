"""Behavioural features per customer, computed from transactions up to a cutoff.

These features feed the churn/propensity model (:mod:`ecrm_analytics.churn`) and the
segmentation (:mod:`ecrm_analytics.clustering`). Everything here is a pure function of
the transactions on or before ``cutoff``, so a model trained on features at one cutoff
and labelled from the window after it never sees the future.

Data policies (the same in every module that calls :func:`prepare_transactions`)
--------------------------------------------------------------------------------
* **Negative amounts are returns and are netted.** A row with a negative amount is a
  return or refund: it lowers the customer's net revenue, but it is not a purchase
  occasion (it does not count as an order, nor move recency). A zero amount (a free
  order) is a purchase.
* **Mixed currencies are refused** unless a conversion table is given. With
  ``currency_col`` set and more than one currency present, pass ``conversion_rates``
  (currency -> multiplier into the reporting currency); a currency missing from the
  table is refused too.
* **Future-dated transactions are refused** by default: anything after
  ``observation_end`` (default: now, UTC) raises :class:`AnalyticsInputError` with the
  count. ``on_future="drop"`` drops them instead and emits a
  :class:`FutureTransactionsWarning` that gives the count.
* Timezone-aware times are converted to UTC and made naive, so that they compare with
  naive cutoffs; naive times are taken as UTC.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ecrm_analytics._validation import (
    AnalyticsInputError,
    coerce_amounts,
    coerce_datetimes,
    require_columns,
    require_no_nan,
    require_non_empty,
)

__all__ = [
    "FEATURE_COLUMNS",
    "FutureTransactionsWarning",
    "customer_features",
    "prepare_transactions",
]

#: The columns :func:`customer_features` returns, in order.
FEATURE_COLUMNS = (
    "n_orders",
    "frequency",
    "recency_days",
    "tenure_days",
    "t_x_days",
    "revenue_total",
    "revenue_mean",
    "orders_90d",
    "revenue_90d",
    "orders_365d",
    "mean_gap_days",
    "return_rate",
)


class FutureTransactionsWarning(UserWarning):
    """Transactions dated after the observation end were dropped."""


def _naive_utc(values: pd.Series) -> pd.Series:
    if getattr(values.dt, "tz", None) is not None:
        return values.dt.tz_convert("UTC").dt.tz_localize(None)
    return values


def _naive_utc_ts(value) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts


def prepare_transactions(
    transactions: pd.DataFrame,
    *,
    customer_col: str = "customer_id",
    time_col: str = "date",
    amount_col: str = "amount",
    currency_col: str | None = None,
    conversion_rates: Mapping[str, float] | None = None,
    observation_end=None,
    on_future: str = "raise",
    what: str = "transactions",
) -> pd.DataFrame:
    """Validate a transactions table and return it in the library's standard form.

    Parameters
    ----------
    transactions : pandas.DataFrame
        One row per order (or order line), with customer, time and amount columns.
    customer_col, time_col, amount_col : str
        Names of the customer id, purchase time and amount columns.
    currency_col : str, optional
        Name of a currency code column. If given and more than one currency is
        present, ``conversion_rates`` is required.
    conversion_rates : mapping of str to float, optional
        Multiplier from each currency into the reporting currency
        (``{"EUR": 1.0, "USD": 0.92}``).
    observation_end : datetime-like, optional
        The end of observation; later rows are future-dated. Default: now (UTC).
    on_future : {"raise", "drop"}
        Refuse future-dated rows (default) or drop them with a
        :class:`FutureTransactionsWarning` giving the count.
    what : str
        How to name the table in error messages.

    Returns
    -------
    pandas.DataFrame
        Columns ``customer_id``, ``time`` (naive UTC datetime64) and ``amount``
        (float64, in the reporting currency; negative for returns), sorted by
        customer and time.

    Raises
    ------
    AnalyticsInputError
        Empty table, missing columns, unparseable dates or amounts, missing customer
        ids, mixed currencies without a conversion table, or future-dated rows with
        ``on_future="raise"``.

    Examples
    --------
    >>> import pandas as pd
    >>> tx = pd.DataFrame({"customer_id": ["a", "a"], "date": ["2024-01-02", "2024-01-01"],
    ...                    "amount": [10, -2.5]})
    >>> prepare_transactions(tx, observation_end="2024-12-31")
      customer_id       time  amount
    0           a 2024-01-01    -2.5
    1           a 2024-01-02    10.0
    """
    if on_future not in ("raise", "drop"):
        raise AnalyticsInputError(f"on_future must be 'raise' or 'drop', got {on_future!r}")
    columns = {customer_col: "customer id", time_col: "purchase time", amount_col: "amount"}
    if currency_col is not None:
        columns[currency_col] = "currency code"
    require_columns(transactions, columns, what=what)
    require_non_empty(transactions, what=what)
    require_no_nan(transactions[customer_col], name=customer_col)
    times = _naive_utc(coerce_datetimes(transactions[time_col], name=time_col))
    amounts = coerce_amounts(transactions[amount_col], name=amount_col)

    if currency_col is not None:
        currencies = transactions[currency_col]
        require_no_nan(currencies, name=currency_col)
        present = sorted(pd.unique(currencies).tolist())
        if conversion_rates is None:
            if len(present) > 1:
                raise AnalyticsInputError(
                    f"{what} mixes currencies {', '.join(map(str, present))}: amounts in different "
                    "currencies cannot be added; pass conversion_rates (currency -> multiplier into "
                    "the reporting currency) or filter to one currency"
                )
        else:
            missing = [c for c in present if c not in conversion_rates]
            if missing:
                raise AnalyticsInputError(
                    f"conversion_rates has no rate for currency {', '.join(map(str, missing))}"
                )
            rates = currencies.map(dict(conversion_rates)).astype("float64")
            if not (np.isfinite(rates.to_numpy()).all() and (rates > 0).all()):
                raise AnalyticsInputError("conversion_rates must be finite and positive")
            amounts = amounts * rates

    end = _naive_utc_ts(observation_end if observation_end is not None else pd.Timestamp.now(tz="UTC"))
    future = (times > end).to_numpy()
    n_future = int(future.sum())
    if n_future:
        if on_future == "raise":
            raise AnalyticsInputError(
                f"{what} has {n_future} row(s) dated after the observation end {end} "
                f"(latest {times.max()}); fix the dates, or pass on_future='drop' to drop them"
            )
        warnings.warn(
            f"dropped {n_future} {what} row(s) dated after the observation end {end}",
            FutureTransactionsWarning,
            stacklevel=2,
        )
    keep = ~future
    out = pd.DataFrame(
        {
            "customer_id": transactions[customer_col].to_numpy()[keep],
            "time": times.to_numpy()[keep],
            "amount": amounts.to_numpy()[keep],
        }
    )
    if len(out) == 0:
        raise AnalyticsInputError(f"{what} has no rows on or before the observation end {end}")
    return out.sort_values(["customer_id", "time"], kind="stable").reset_index(drop=True)


def customer_features(tx: pd.DataFrame, cutoff) -> pd.DataFrame:
    """Behavioural features per customer from prepared transactions on or before ``cutoff``.

    Parameters
    ----------
    tx : pandas.DataFrame
        Output of :func:`prepare_transactions` (``customer_id``, ``time``, ``amount``).
    cutoff : datetime-like
        Only rows with ``time <= cutoff`` are used; ages are measured to ``cutoff``.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id`` (customers with at least one purchase on or before
        the cutoff), with the columns in :data:`FEATURE_COLUMNS`, all float64:

        * ``n_orders`` — purchase rows (amount >= 0);
        * ``frequency`` — distinct purchase days minus one (repeat purchases, as in
          BG/NBD, same-day purchases merged);
        * ``recency_days`` — days from the last purchase to the cutoff;
        * ``tenure_days`` — days from the first purchase to the cutoff (BG/NBD ``T``);
        * ``t_x_days`` — days from the first to the last purchase (BG/NBD ``t_x``);
        * ``revenue_total`` — net revenue (purchases minus returns);
        * ``revenue_mean`` — mean purchase amount;
        * ``orders_90d``, ``revenue_90d``, ``orders_365d`` — purchases (and their
          amount) in the 90 and 365 days up to the cutoff;
        * ``mean_gap_days`` — mean days between distinct purchase days
          (``t_x_days / frequency``); NaN for one-time buyers;
        * ``return_rate`` — returned amount over purchased amount (0 without returns).

    Raises
    ------
    AnalyticsInputError
        If no customer purchased on or before the cutoff.

    Examples
    --------
    >>> import pandas as pd
    >>> tx = prepare_transactions(pd.DataFrame({
    ...     "customer_id": ["a", "a", "a", "b"],
    ...     "date": ["2024-01-01", "2024-01-11", "2024-01-12", "2024-01-21"],
    ...     "amount": [10.0, 30.0, -5.0, 8.0]}), observation_end="2024-12-31")
    >>> f = customer_features(tx, "2024-01-31")
    >>> f[["n_orders", "frequency", "recency_days", "tenure_days"]]  # doctest: +NORMALIZE_WHITESPACE
                 n_orders  frequency  recency_days  tenure_days
    customer_id
    a                 2.0        1.0          20.0         30.0
    b                 1.0        0.0          10.0         10.0
    >>> f[["revenue_total", "revenue_mean", "return_rate"]]  # doctest: +NORMALIZE_WHITESPACE
                 revenue_total  revenue_mean  return_rate
    customer_id
    a                     35.0          20.0        0.125
    b                      8.0           8.0        0.000
    """
    cutoff = _naive_utc_ts(cutoff)
    past = tx[tx["time"] <= cutoff]
    purchases = past[past["amount"] >= 0]
    if len(purchases) == 0:
        raise AnalyticsInputError(f"no customer has a purchase on or before the cutoff {cutoff}")
    day = np.timedelta64(1, "D")
    g = purchases.groupby("customer_id", sort=True)
    first = g["time"].min()
    last = g["time"].max()
    out = pd.DataFrame(index=first.index)
    out["n_orders"] = g.size().astype("float64")
    out["frequency"] = (
        purchases["time"].dt.normalize().groupby(purchases["customer_id"], sort=True).nunique() - 1
    ).astype("float64")
    out["recency_days"] = (cutoff - last) / day
    out["tenure_days"] = (cutoff - first) / day
    out["t_x_days"] = (last - first) / day
    net = past.groupby("customer_id", sort=True)["amount"].sum()
    out["revenue_total"] = net.reindex(out.index).astype("float64")
    out["revenue_mean"] = g["amount"].mean().astype("float64")
    for days, cols in ((90, ("orders_90d", "revenue_90d")), (365, ("orders_365d", None))):
        recent = purchases[purchases["time"] > cutoff - pd.Timedelta(days=days)]
        rg = recent.groupby("customer_id", sort=True)["amount"]
        out[cols[0]] = rg.size().reindex(out.index, fill_value=0).astype("float64")
        if cols[1] is not None:
            out[cols[1]] = rg.sum().reindex(out.index, fill_value=0.0).astype("float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        out["mean_gap_days"] = np.where(out["frequency"] > 0, out["t_x_days"] / out["frequency"], np.nan)
    returned = -past.loc[past["amount"] < 0].groupby("customer_id")["amount"].sum()
    bought = g["amount"].sum()
    returned = returned.reindex(out.index, fill_value=0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["return_rate"] = np.where(bought > 0, returned / bought, 0.0)
    out.index.name = "customer_id"
    return out[list(FEATURE_COLUMNS)]
