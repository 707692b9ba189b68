"""Monthly acquisition cohorts: retention and revenue matrices.

A customer's cohort is the calendar month of their first purchase. For cohort ``c``
and ``k`` months since acquisition (calendar months: a customer acquired on 31 January
is in month 1 on 1 February):

* ``active[c, k]`` — cohort members with at least one purchase in month ``c + k``;
* ``retention[c, k]`` — ``active[c, k] / size[c]`` (so month 0 is always 1.0);
* ``revenue[c, k]`` — the cohort's net revenue in month ``c + k``;
* ``revenue_per_customer[c, k]`` — ``revenue[c, k] / size[c]``;
* ``cumulative_revenue_per_customer`` — its running sum along ``k``.

Cells after the observation end (month ``c + k`` later than the month of
``observation_end``) are **NaN, not 0**: they have not happened yet. The month holding
the observation end is counted although it may be partial.

Policies (see :mod:`ecrm_analytics.features`): a negative amount is a return; it is
netted into revenue in the month it happens, but it does not make a customer active or
acquire one (a customer whose only rows are returns has no cohort). A return dated
before the customer's first purchase cannot be placed in a cohort month and is left
out. Mixed currencies are refused without ``conversion_rates``; future-dated rows are
refused, or dropped with a warning when ``on_future="drop"``.

References
----------
Fader, P. S. and Hardie, B. G. S. (2010). Customer-base valuation in a contractual
setting: the perils of ignoring heterogeneity. *Marketing Science*, 29(1), 85-93
(cohort retention curves).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ecrm_analytics._validation import AnalyticsInputError
from ecrm_analytics.features import _naive_utc_ts, prepare_transactions

__all__ = ["CohortTables", "cohort_tables"]


@dataclass
class CohortTables:
    """Cohort matrices, indexed by cohort month (``PeriodIndex``), columns = months since acquisition."""

    sizes: pd.Series
    active: pd.DataFrame
    retention: pd.DataFrame
    revenue: pd.DataFrame
    revenue_per_customer: pd.DataFrame
    cumulative_revenue_per_customer: pd.DataFrame


def cohort_tables(
    transactions: pd.DataFrame,
    *,
    customer_col: str = "customer_id",
    time_col: str = "date",
    amount_col: str = "amount",
    currency_col: str | None = None,
    conversion_rates: Mapping[str, float] | None = None,
    observation_end=None,
    on_future: str = "raise",
) -> CohortTables:
    """Build monthly acquisition cohorts with retention and revenue matrices.

    Parameters
    ----------
    transactions : pandas.DataFrame
        One row per order: customer, time, amount (negative for returns).
    customer_col, time_col, amount_col, currency_col, conversion_rates, on_future
        See :func:`ecrm_analytics.features.prepare_transactions`.
    observation_end : datetime-like, optional
        End of observation: its month is the last column filled. Default: the latest
        transaction (and rows after "now" are refused as future-dated).

    Returns
    -------
    CohortTables

    Raises
    ------
    AnalyticsInputError
        Empty data, bad columns, mixed currencies, future-dated rows, or no purchase
        (only returns).

    Examples
    --------
    >>> import pandas as pd
    >>> tx = pd.DataFrame({
    ...     "customer_id": ["a", "a", "b", "b", "c"],
    ...     "date": ["2024-01-05", "2024-02-20", "2024-01-31", "2024-03-01", "2024-02-02"],
    ...     "amount": [10.0, 20.0, 5.0, 7.0, 8.0]})
    >>> t = cohort_tables(tx, observation_end="2024-03-31")
    >>> t.retention  # doctest: +NORMALIZE_WHITESPACE
    months_since_acquisition    0    1    2
    cohort
    2024-01                   1.0  0.5  0.5
    2024-02                   1.0  0.0  NaN
    >>> t.revenue  # doctest: +NORMALIZE_WHITESPACE
    months_since_acquisition     0     1    2
    cohort
    2024-01                   15.0  20.0  7.0
    2024-02                    8.0   0.0  NaN
    """
    end_given = observation_end is not None
    tx = prepare_transactions(
        transactions, customer_col=customer_col, time_col=time_col, amount_col=amount_col,
        currency_col=currency_col, conversion_rates=conversion_rates,
        observation_end=observation_end, on_future=on_future,
    )
    purchases = tx[tx["amount"] >= 0]
    if len(purchases) == 0:
        raise AnalyticsInputError("transactions has no purchase (only returns): no customer can be in a cohort")
    end = _naive_utc_ts(observation_end) if end_given else tx["time"].max()
    end_month = end.to_period("M")

    # Months as integers (year * 12 + month - 1): vectorised month arithmetic.
    code = (tx["time"].dt.year * 12 + tx["time"].dt.month - 1).to_numpy()
    is_buy = (tx["amount"] >= 0).to_numpy()
    first = pd.Series(code[is_buy]).groupby(tx["customer_id"].to_numpy()[is_buy]).min()
    cohort = tx["customer_id"].map(first).to_numpy()
    known = ~pd.isna(cohort)
    cohort = cohort[known].astype("int64")
    k = code[known] - cohort
    ok = k >= 0
    cohort, k = cohort[ok], k[ok]
    sub = tx[known][ok]
    end_code = end_month.year * 12 + end_month.month - 1

    n_k = end_code - int(first.min()) + 1
    counts = first.value_counts()
    codes = np.sort(counts.index.to_numpy())
    sizes = pd.Series(counts.reindex(codes).to_numpy(), index=_periods(codes), name="customers")
    sizes.index.name = "cohort"
    cols = pd.RangeIndex(n_k, name="months_since_acquisition")

    frame = pd.DataFrame({"cohort": _periods(cohort), "k": k, "customer_id": sub["customer_id"].to_numpy(),
                          "amount": sub["amount"].to_numpy()})
    buys = frame[frame["amount"] >= 0]
    active = buys.groupby(["cohort", "k"])["customer_id"].nunique().unstack(fill_value=0)
    revenue = frame.groupby(["cohort", "k"])["amount"].sum().unstack(fill_value=0.0)
    active = active.reindex(index=sizes.index, columns=cols, fill_value=0).astype("float64")
    revenue = revenue.reindex(index=sizes.index, columns=cols, fill_value=0.0).astype("float64")

    # Blank the cells that lie after the observation end.
    ages = end_code - codes
    future = np.arange(n_k)[None, :] > ages[:, None]
    active = active.mask(future)
    revenue = revenue.mask(future)
    size = sizes.to_numpy(dtype="float64")[:, None]
    retention = active / size
    per_customer = revenue / size
    cumulative = per_customer.cumsum(axis=1).mask(future)
    for df in (active, retention, revenue, per_customer, cumulative):
        df.index.name = "cohort"
        df.columns.name = "months_since_acquisition"
    return CohortTables(
        sizes=sizes, active=active, retention=retention, revenue=revenue,
        revenue_per_customer=per_customer, cumulative_revenue_per_customer=cumulative,
    )


def _periods(codes: np.ndarray) -> pd.PeriodIndex:
    codes = np.asarray(codes, dtype="int64")
    return pd.PeriodIndex.from_fields(year=codes // 12, month=codes % 12 + 1, freq="M")
