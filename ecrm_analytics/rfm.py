"""RFM: per-customer recency, frequency and monetary summaries, scores and segments.

Conventions (the ones of Fader, Hardie & Lee and of the ``lifetimes`` package, so
that the summary feeds the BG/NBD, Pareto/NBD and Gamma-Gamma models directly):

* A *purchase occasion* is a (customer, period) pair: every line a customer buys in
  the same calendar day (``merge_period="D"``) or Monday-to-Sunday week
  (``merge_period="W"``) is merged into one purchase whose amount is their sum.
* ``frequency`` is the number of **repeat** purchase occasions: distinct periods
  minus one (the first purchase is not counted).
* ``recency`` is the time from the first to the last purchase occasion (0 for
  one-time buyers), ``T`` the time from the first purchase to the observation end.
  Both are measured between period starts, in days (``time_unit="D"``) or weeks of
  seven days (``time_unit="W"``; fractional, e.g. 30.43 for 213 days).
* ``monetary_value`` is the mean amount of the **repeat** purchase occasions
  (``monetary="repeat"``, the Gamma-Gamma input) and 0 for one-time buyers; with
  ``monetary="all"`` it is the mean over all occasions, first one included (what RFM
  scoring usually wants).
* Transactions after ``observation_end`` are ignored (that is how a calibration
  period is cut); the count is reported in ``summary.attrs["lines_after_end"]``.
* Timezone-aware times are converted to UTC and bucketed by UTC calendar day, as in
  :mod:`ecrm_analytics.features`; naive times are taken as they are.
* Negative amounts (returns) are refused: net them into their orders first.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from ._validation import (
    AnalyticsInputError,
    coerce_amounts,
    coerce_datetimes,
    require_columns,
    require_non_empty,
)

__all__ = [
    "rfm_summary",
    "calibration_and_holdout_data",
    "rfm_scores",
    "rfm_segments",
    "SEGMENTS",
    "SEGMENT_GRID",
]

_NS_PER_DAY = 86_400 * 1_000_000_000
_UNIT_DAYS = {"D": 1.0, "W": 7.0}


def _day_numbers(times: pd.Series, name: str) -> np.ndarray:
    """Whole days since 1970-01-01 (UTC for aware times), as int64."""
    times = coerce_datetimes(times, name=name)
    if getattr(times.dt, "tz", None) is not None:
        times = times.dt.tz_convert("UTC").dt.tz_localize(None)
    ns = times.to_numpy(dtype="datetime64[ns]").view("int64")
    return np.floor_divide(ns, _NS_PER_DAY)


def _end_day(observation_end, name: str) -> int:
    ts = pd.Timestamp(observation_end)
    if ts is pd.NaT:
        raise AnalyticsInputError(f"{name} is not a date: {observation_end!r}")
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return int(ts.value // _NS_PER_DAY)


def _period_start(days: np.ndarray, merge_period: str) -> np.ndarray:
    if merge_period == "D":
        return days
    if merge_period == "W":
        # 1970-01-01 was a Thursday: shift by 3 so that weeks start on Monday
        return (days + 3) // 7 * 7 - 3
    raise AnalyticsInputError(f"merge_period must be 'D' or 'W', got {merge_period!r}")


def _check_choice(value, allowed, name):
    if value not in allowed:
        raise AnalyticsInputError(f"{name} must be one of {sorted(allowed)}, got {value!r}")


def _purchase_occasions(customers, days, amounts):
    """Merge lines into (customer code, period) occasions; returns codes, uniques, periods, sums."""
    codes, uniques = pd.factorize(customers, sort=True)
    if (codes < 0).any():
        raise AnalyticsInputError("customer column has missing values; drop or fill them first")
    dmin = int(days.min())
    span = int(days.max()) - dmin + 1
    key = codes.astype("int64") * span + (days - dmin)
    # hash-based dedup (no sort of the 10M lines), then a bincount for amounts
    occ_codes, occ_key = pd.factorize(key, sort=False)
    sums = np.bincount(occ_codes, weights=amounts) if amounts is not None else None
    occ_key = np.asarray(occ_key)
    return occ_key // span, uniques, occ_key % span + dmin, sums


def rfm_summary(
    transactions: pd.DataFrame,
    customer_col: str,
    time_col: str,
    amount_col: str | None = None,
    *,
    observation_end=None,
    time_unit: Literal["D", "W"] = "D",
    merge_period: Literal["D", "W"] = "D",
    monetary: Literal["repeat", "all"] = "repeat",
) -> pd.DataFrame:
    """Summarise a transaction log into frequency, recency, T and monetary value.

    Parameters
    ----------
    transactions : pandas.DataFrame
        One row per order or order line.
    customer_col : str
        Column with the customer id (any hashable type).
    time_col : str
        Column with the purchase time (datetime64, date strings or datetimes).
    amount_col : str, optional
        Column with the amount (non-negative numbers or ``Decimal``). Without it the
        output has no ``monetary_value`` column.
    observation_end : date-like, optional
        Last day of the observation period (inclusive); later lines are ignored.
        Default: the day of the last transaction.
    time_unit : {"D", "W"}
        Unit of ``recency`` and ``T``: days, or weeks of 7 days.
    merge_period : {"D", "W"}
        Purchases in the same calendar day, or the same Monday-Sunday week, form one
        purchase occasion.
    monetary : {"repeat", "all"}
        Average the amounts of the repeat occasions only (lifetimes' convention,
        required by the Gamma-Gamma model; 0 for one-time buyers) or of all occasions.

    Returns
    -------
    pandas.DataFrame
        Indexed by customer id (sorted), float columns ``frequency``, ``recency``,
        ``T`` and, with ``amount_col``, ``monetary_value``. ``attrs`` records
        ``time_unit``, ``observation_end`` and ``lines_after_end``.

    Raises
    ------
    AnalyticsInputError
        Missing columns, no transactions on or before ``observation_end``, missing
        or unparseable times, missing or negative amounts.

    References
    ----------
    Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005). "RFM and CLV: using
    iso-value curves for customer base analysis". Journal of Marketing Research
    42(4), 415-430.

    Examples
    --------
    >>> import pandas as pd
    >>> tx = pd.DataFrame({
    ...     "customer": ["ann", "ann", "ann", "bob", "ann"],
    ...     "at": ["2024-01-01 09:00", "2024-01-01 17:00", "2024-01-08", "2024-01-05", "2024-01-15"],
    ...     "amount": [10.0, 5.0, 20.0, 7.0, 30.0],
    ... })
    >>> rfm_summary(tx, "customer", "at", "amount", observation_end="2024-01-15")
    ... # doctest: +NORMALIZE_WHITESPACE
              frequency  recency     T  monetary_value
    customer
    ann             2.0     14.0  14.0            25.0
    bob             0.0      0.0  10.0             0.0
    """
    _check_choice(time_unit, _UNIT_DAYS, "time_unit")
    _check_choice(monetary, {"repeat", "all"}, "monetary")
    cols = {customer_col: "customer id", time_col: "purchase time"}
    if amount_col is not None:
        cols[amount_col] = "amount"
    require_columns(transactions, cols, what="transactions")
    require_non_empty(transactions, what="transactions")

    days = _day_numbers(transactions[time_col], time_col)
    amounts = None
    if amount_col is not None:
        amounts = coerce_amounts(transactions[amount_col], name=amount_col, allow_negative=False).to_numpy()
    customers = transactions[customer_col].to_numpy()

    end = int(days.max()) if observation_end is None else _end_day(observation_end, "observation_end")
    keep = days <= end
    after_end = int(len(days) - np.count_nonzero(keep))
    if after_end:
        days, customers = days[keep], customers[keep]
        amounts = amounts[keep] if amounts is not None else None
    if len(days) == 0:
        raise AnalyticsInputError(f"no transactions on or before observation_end ({observation_end})")
    days = _period_start(days, merge_period)
    end = int(_period_start(np.array([end]), merge_period)[0])

    occ_cust, uniques, occ_day, occ_sum = _purchase_occasions(customers, days, amounts)
    n = len(uniques)
    count = np.bincount(occ_cust, minlength=n)
    first = np.full(n, np.iinfo("int64").max)
    last = np.full(n, np.iinfo("int64").min)
    np.minimum.at(first, occ_cust, occ_day)
    np.maximum.at(last, occ_cust, occ_day)

    unit = _UNIT_DAYS[time_unit]
    out = pd.DataFrame(
        {
            "frequency": (count - 1).astype("float64"),
            "recency": (last - first) / unit,
            "T": (end - first) / unit,
        },
        index=pd.Index(uniques, name=customer_col),
    )
    if occ_sum is not None:
        total = np.bincount(occ_cust, weights=occ_sum, minlength=n)
        if monetary == "all":
            out["monetary_value"] = total / count
        else:
            is_first = occ_day == first[occ_cust]
            first_amount = np.bincount(occ_cust, weights=np.where(is_first, occ_sum, 0.0), minlength=n)
            with np.errstate(invalid="ignore", divide="ignore"):
                out["monetary_value"] = np.where(count > 1, (total - first_amount) / (count - 1), 0.0)
    out.attrs.update(
        time_unit=time_unit,
        observation_end=str(pd.Timestamp(end * _NS_PER_DAY).date()),
        lines_after_end=after_end,
    )
    return out


def calibration_and_holdout_data(
    transactions: pd.DataFrame,
    customer_col: str,
    time_col: str,
    amount_col: str | None = None,
    *,
    calibration_end,
    observation_end=None,
    time_unit: Literal["D", "W"] = "D",
    merge_period: Literal["D", "W"] = "D",
) -> pd.DataFrame:
    """Split a transaction log into a calibration summary and holdout outcomes.

    Customers are those with a purchase on or before ``calibration_end``; their
    calibration summary is :func:`rfm_summary` at ``calibration_end`` (suffix
    ``_cal``). The holdout columns count what they did in
    ``(calibration_end, observation_end]``.

    Parameters
    ----------
    transactions, customer_col, time_col, amount_col
        As in :func:`rfm_summary`.
    calibration_end : date-like
        Last day of the calibration period (inclusive).
    observation_end : date-like, optional
        Last day of the holdout period (inclusive); default: last transaction day.
    time_unit, merge_period
        As in :func:`rfm_summary`.

    Returns
    -------
    pandas.DataFrame
        Columns ``frequency_cal``, ``recency_cal``, ``T_cal``, (``monetary_value_cal``),
        ``frequency_holdout`` (number of purchase occasions in the holdout),
        (``monetary_value_holdout``: mean amount per holdout occasion, 0 if none) and
        ``duration_holdout`` (length of the holdout period in ``time_unit``).
        Unlike lifetimes, the holdout monetary value is averaged per merged purchase
        occasion, not per raw line, so that it is comparable with the calibration one.

    Examples
    --------
    >>> import pandas as pd
    >>> tx = pd.DataFrame({"c": [1, 1, 2, 1, 1],
    ...                    "d": ["2024-01-01", "2024-01-03", "2024-01-02", "2024-01-12", "2024-01-12"],
    ...                    "x": [5.0, 7.0, 3.0, 4.0, 6.0]})
    >>> cal = calibration_and_holdout_data(tx, "c", "d", "x", calibration_end="2024-01-05",
    ...                                    observation_end="2024-01-19")
    >>> cal[["frequency_cal", "T_cal", "frequency_holdout", "monetary_value_holdout"]].to_dict("index")
    {1: {'frequency_cal': 1.0, 'T_cal': 4.0, 'frequency_holdout': 1.0, 'monetary_value_holdout': 10.0}, 2: {'frequency_cal': 0.0, 'T_cal': 3.0, 'frequency_holdout': 0.0, 'monetary_value_holdout': 0.0}}
    >>> float(cal["duration_holdout"].iloc[0])
    14.0
    """
    _check_choice(time_unit, _UNIT_DAYS, "time_unit")
    require_columns(transactions, [customer_col, time_col] + ([amount_col] if amount_col else []),
                    what="transactions")
    require_non_empty(transactions, what="transactions")
    cal_end = _end_day(calibration_end, "calibration_end")
    days = _day_numbers(transactions[time_col], time_col)
    obs_end = int(days.max()) if observation_end is None else _end_day(observation_end, "observation_end")
    if obs_end <= cal_end:
        raise AnalyticsInputError(
            f"observation_end ({observation_end}) must be after calibration_end ({calibration_end})"
        )
    cal = rfm_summary(
        transactions, customer_col, time_col, amount_col,
        observation_end=calibration_end, time_unit=time_unit, merge_period=merge_period,
    )
    cal.columns = [f"{c}_cal" for c in cal.columns]

    in_holdout = (days > cal_end) & (days <= obs_end)
    hold = transactions.loc[in_holdout, [customer_col, time_col] + ([amount_col] if amount_col else [])]
    hold = hold[hold[customer_col].isin(cal.index)]
    cal["frequency_holdout"] = 0.0
    if amount_col:
        cal["monetary_value_holdout"] = 0.0
    if len(hold):
        h = rfm_summary(hold, customer_col, time_col, amount_col, merge_period=merge_period,
                        monetary="all", observation_end=pd.Timestamp(obs_end * _NS_PER_DAY))
        cal.loc[h.index, "frequency_holdout"] = h["frequency"] + 1
        if amount_col:
            cal.loc[h.index, "monetary_value_holdout"] = h["monetary_value"]
    span = _period_start(np.array([obs_end]), merge_period)[0] - _period_start(np.array([cal_end]), merge_period)[0]
    cal["duration_holdout"] = float(span) / _UNIT_DAYS[time_unit]
    cal.attrs.update(calibration_end=str(pd.Timestamp(cal_end * _NS_PER_DAY).date()),
                     observation_end=str(pd.Timestamp(obs_end * _NS_PER_DAY).date()))
    return cal


# --- scores and segments -------------------------------------------------------------

#: The named segments, in the order they are usually shown (best first).
SEGMENTS = (
    "champions",
    "loyal",
    "potential loyalists",
    "new",
    "promising",
    "need attention",
    "about to sleep",
    "at risk",
    "can't lose them",
    "hibernating",
    "lost",
)

#: Segment of each (R score, FM score) cell: the widely used R-by-FM grid (e.g. the
#: segment map popularised by Putler and the ``rfm`` R package), with the bottom-left
#: cell split off as "lost". FM is the mean of the F and M scores rounded half up.
#:
#: =====  ===============  ===================  ===================  ===============  ===============
#: R\\FM   1                2                    3                    4                5
#: =====  ===============  ===================  ===================  ===============  ===============
#: 5      new              potential loyalists  potential loyalists  champions        champions
#: 4      promising        potential loyalists  potential loyalists  loyal            loyal
#: 3      about to sleep   about to sleep       need attention       loyal            loyal
#: 2      hibernating      hibernating          at risk              at risk          can't lose them
#: 1      lost             hibernating          at risk              at risk          can't lose them
#: =====  ===============  ===================  ===================  ===============  ===============
SEGMENT_GRID: dict[tuple[int, int], str] = {}
_ROWS = {
    5: ("new", "potential loyalists", "potential loyalists", "champions", "champions"),
    4: ("promising", "potential loyalists", "potential loyalists", "loyal", "loyal"),
    3: ("about to sleep", "about to sleep", "need attention", "loyal", "loyal"),
    2: ("hibernating", "hibernating", "at risk", "at risk", "can't lose them"),
    1: ("lost", "hibernating", "at risk", "at risk", "can't lose them"),
}
for _r, _names in _ROWS.items():
    for _fm, _name in enumerate(_names, start=1):
        SEGMENT_GRID[(_r, _fm)] = _name


def _quantile_score(values: pd.Series, n_bins: int) -> np.ndarray:
    """Score k in 1..n_bins such that equal values share a score.

    ``score = 1 + floor(n_bins * (#values strictly smaller) / n)``: it does not depend
    on row order, and ties never straddle a boundary (so with heavy ties some scores
    may be unused: if 60% of customers have frequency 0 they all get F=1).
    """
    below = values.rank(method="min").to_numpy() - 1.0
    return (1 + np.floor(n_bins * below / len(values))).astype("int64")


def rfm_scores(summary: pd.DataFrame, *, n_bins: int = 5) -> pd.DataFrame:
    """Quantile scores 1..``n_bins`` for recency, frequency and monetary value.

    R scores the time since the last purchase, ``T - recency`` (fewer days is better,
    so higher R); F the number of purchase occasions, ``frequency + 1``; M the
    ``monetary_value`` column (use ``rfm_summary(..., monetary="all")`` so that
    one-time buyers get their spend). Scores are by rank among all customers, ties
    share a score (see :func:`_quantile_score`), so results are deterministic.

    Parameters
    ----------
    summary : pandas.DataFrame
        Output of :func:`rfm_summary` (``frequency``, ``recency``, ``T``, optionally
        ``monetary_value``).
    n_bins : int
        Number of score levels (5 for the classic 1-5 scale).

    Returns
    -------
    pandas.DataFrame
        Same index, int columns ``r_score``, ``f_score``, ``m_score`` (if monetary
        values are present), ``fm_score`` and string ``rfm_code`` such as ``"545"``.

    Examples
    --------
    >>> import pandas as pd
    >>> s = pd.DataFrame({"frequency": [0., 0., 3., 9., 1.], "recency": [0., 0., 20., 60., 5.],
    ...                   "T": [90., 10., 30., 61., 80.], "monetary_value": [10., 20., 30., 40., 50.]},
    ...                  index=pd.Index(list("abcde"), name="customer"))
    >>> rfm_scores(s)  # doctest: +NORMALIZE_WHITESPACE
              r_score  f_score  m_score  fm_score rfm_code
    customer
    a               1        1        1         1      111
    b               3        1        2         2      312
    c               3        4        3         4      343
    d               5        5        4         5      554
    e               2        3        5         4      235
    """
    require_columns(summary, ["frequency", "recency", "T"], what="summary")
    require_non_empty(summary, what="summary")
    if n_bins < 2:
        raise AnalyticsInputError(f"n_bins must be at least 2, got {n_bins}")
    since_last = summary["T"] - summary["recency"]
    out = pd.DataFrame(index=summary.index)
    out["r_score"] = _quantile_score(-since_last, n_bins)
    out["f_score"] = _quantile_score(summary["frequency"], n_bins)
    if "monetary_value" in summary.columns:
        out["m_score"] = _quantile_score(summary["monetary_value"], n_bins)
        out["fm_score"] = (out["f_score"] + out["m_score"] + 1) // 2
        code = out["r_score"].astype(str) + out["f_score"].astype(str) + out["m_score"].astype(str)
    else:
        out["fm_score"] = out["f_score"]
        code = out["r_score"].astype(str) + out["f_score"].astype(str)
    out["rfm_code"] = code
    return out


def rfm_segments(scores: pd.DataFrame) -> pd.Series:
    """Name the segment of each customer from its R and FM scores (5-level scores).

    Parameters
    ----------
    scores : pandas.DataFrame
        Output of :func:`rfm_scores` with ``n_bins=5`` (columns ``r_score``,
        ``fm_score``).

    Returns
    -------
    pandas.Series
        Categorical segment names (categories in :data:`SEGMENTS` order), named
        ``segment``, same index. The mapping is :data:`SEGMENT_GRID`.

    Examples
    --------
    >>> import pandas as pd
    >>> rfm_segments(pd.DataFrame({"r_score": [5, 1, 2], "fm_score": [5, 1, 5]})).tolist()
    ['champions', 'lost', "can't lose them"]
    """
    require_columns(scores, ["r_score", "fm_score"], what="scores")
    r = scores["r_score"].to_numpy()
    fm = scores["fm_score"].to_numpy()
    if ((r < 1) | (r > 5) | (fm < 1) | (fm > 5)).any():
        raise AnalyticsInputError("rfm_segments needs 5-level scores (1..5); use rfm_scores(n_bins=5)")
    lookup = np.empty((6, 6), dtype=object)
    for (ri, fi), name in SEGMENT_GRID.items():
        lookup[ri, fi] = name
    return pd.Series(
        pd.Categorical(lookup[r, fm], categories=list(SEGMENTS)), index=scores.index, name="segment"
    )
