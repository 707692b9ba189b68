"""Column contracts shared by every ``ecrm_analytics`` entry point.

Every public function that takes a DataFrame checks it here first, so a data
scientist gets one kind of error (:class:`AnalyticsInputError`, a ``ValueError``)
with a message that names the offending column and says what was expected,
instead of a ``KeyError`` or a silently wrong number three calls later.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

__all__ = [
    "AnalyticsInputError",
    "require_columns",
    "require_non_empty",
    "coerce_datetimes",
    "coerce_amounts",
    "coerce_counts",
    "require_no_nan",
    "require_non_negative",
]


class AnalyticsInputError(ValueError):
    """The input data cannot support the requested computation; the message says why."""


def require_non_empty(df: pd.DataFrame, *, what: str = "data") -> None:
    """Raise :class:`AnalyticsInputError` when ``df`` has no rows.

    Parameters
    ----------
    df : pandas.DataFrame
        The table to check.
    what : str
        How to name the table in the message (``"transactions"``).

    Examples
    --------
    >>> import pandas as pd
    >>> require_non_empty(pd.DataFrame({"a": []}), what="transactions")
    Traceback (most recent call last):
    ...
    ecrm_analytics._validation.AnalyticsInputError: transactions is empty: at least one row is needed
    """
    if len(df) == 0:
        raise AnalyticsInputError(f"{what} is empty: at least one row is needed")


def require_columns(
    df: pd.DataFrame, columns: Iterable[str] | Mapping[str, str], *, what: str = "data"
) -> None:
    """Check that ``df`` is a DataFrame holding every column in ``columns``.

    Parameters
    ----------
    df : pandas.DataFrame
        The table to check.
    columns : iterable of str, or mapping of str to str
        The required column names. A mapping ``{column: description}`` adds the
        description to the error message (``{"order_date": "purchase time"}``).
    what : str
        How to name the table in the message.

    Raises
    ------
    AnalyticsInputError
        If ``df`` is not a DataFrame or a column is missing; the message lists all
        missing columns and the columns that are present.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"customer_id": [1], "date": ["2024-01-01"]})
    >>> require_columns(df, ["customer_id", "date"])
    >>> require_columns(df, {"amount": "order value"}, what="transactions")
    Traceback (most recent call last):
    ...
    ecrm_analytics._validation.AnalyticsInputError: transactions is missing column(s) 'amount' (order value); present: 'customer_id', 'date'
    """
    if not isinstance(df, pd.DataFrame):
        raise AnalyticsInputError(f"{what} must be a pandas DataFrame, got {type(df).__name__}")
    described = dict(columns) if isinstance(columns, Mapping) else {c: "" for c in columns}
    missing = [c for c in described if c not in df.columns]
    if missing:
        parts = [f"{c!r} ({described[c]})" if described[c] else repr(c) for c in missing]
        present = ", ".join(repr(str(c)) for c in df.columns) or "none"
        raise AnalyticsInputError(f"{what} is missing column(s) {', '.join(parts)}; present: {present}")


def require_no_nan(values: pd.Series | np.ndarray, *, name: str) -> None:
    """Raise :class:`AnalyticsInputError` if ``values`` holds NaN/NaT/None.

    Parameters
    ----------
    values : pandas.Series or numpy.ndarray
        The values to check.
    name : str
        Column name for the message.

    Examples
    --------
    >>> import numpy as np
    >>> require_no_nan(np.array([1.0, np.nan]), name="amount")
    Traceback (most recent call last):
    ...
    ecrm_analytics._validation.AnalyticsInputError: column 'amount' has 1 missing value(s) (NaN/NaT/None); drop or fill them first
    """
    n_bad = int(pd.isna(values).sum())
    if n_bad:
        raise AnalyticsInputError(
            f"column {name!r} has {n_bad} missing value(s) (NaN/NaT/None); drop or fill them first"
        )


def require_non_negative(values: pd.Series | np.ndarray, *, name: str, hint: str = "") -> None:
    """Raise :class:`AnalyticsInputError` if any of ``values`` is negative.

    Parameters
    ----------
    values : pandas.Series or numpy.ndarray
        Numeric values.
    name : str
        Column name for the message.
    hint : str
        Optional advice appended to the message.

    Examples
    --------
    >>> require_non_negative([0, 2, -1], name="frequency")
    Traceback (most recent call last):
    ...
    ecrm_analytics._validation.AnalyticsInputError: column 'frequency' has 1 negative value(s) (minimum -1)
    """
    arr = np.asarray(values)
    neg = arr < 0
    if neg.any():
        msg = f"column {name!r} has {int(neg.sum())} negative value(s) (minimum {arr.min():g})"
        raise AnalyticsInputError(msg + (f"; {hint}" if hint else ""))


def coerce_datetimes(values: pd.Series, *, name: str) -> pd.Series:
    """Return ``values`` as ``datetime64`` (timezone kept if present).

    Strings are parsed with :func:`pandas.to_datetime`; unparseable values and
    missing values raise :class:`AnalyticsInputError` naming the first bad value.

    Parameters
    ----------
    values : pandas.Series
        Dates or datetimes (datetime64, strings, Python datetimes).
    name : str
        Column name for the message.

    Returns
    -------
    pandas.Series
        A datetime64 Series with the same index.

    Examples
    --------
    >>> import pandas as pd
    >>> coerce_datetimes(pd.Series(["1997-01-01", "1997-01-03"]), name="date").dt.day.tolist()
    [1, 3]
    >>> coerce_datetimes(pd.Series(["1997-01-01", "not a date"]), name="date")
    Traceback (most recent call last):
    ...
    ecrm_analytics._validation.AnalyticsInputError: column 'date' has 1 value(s) that are not dates, e.g. 'not a date'
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        out = values
    else:
        # object or string dtype (pandas 3 infers "str"): parse each value on its own
        textual = values.dtype == object or pd.api.types.is_string_dtype(values.dtype)
        out = pd.to_datetime(values, errors="coerce", format="mixed") if textual else None
        if out is None:
            try:
                out = pd.to_datetime(values, errors="coerce")
            except (TypeError, ValueError) as exc:
                raise AnalyticsInputError(f"column {name!r} cannot be read as dates: {exc}") from exc
        bad = out.isna() & values.notna()
        if bad.any():
            first = values[bad].iloc[0]
            raise AnalyticsInputError(
                f"column {name!r} has {int(bad.sum())} value(s) that are not dates, e.g. {first!r}"
            )
    require_no_nan(out, name=name)
    return out


def coerce_amounts(values: pd.Series, *, name: str, allow_negative: bool = True) -> pd.Series:
    """Return ``values`` as float64, refusing text, NaN and (optionally) negatives.

    ``decimal.Decimal`` objects (money as stored by the CRM) are converted to float.

    Parameters
    ----------
    values : pandas.Series
        Numeric amounts.
    name : str
        Column name for the message.
    allow_negative : bool
        If False, negative amounts (returns, refunds) raise an error.

    Returns
    -------
    pandas.Series
        A float64 Series with the same index.

    Examples
    --------
    >>> import pandas as pd
    >>> from decimal import Decimal
    >>> coerce_amounts(pd.Series([Decimal("1.50"), 2]), name="amount").tolist()
    [1.5, 2.0]
    >>> coerce_amounts(pd.Series([1.0, -3.0]), name="amount", allow_negative=False)
    Traceback (most recent call last):
    ...
    ecrm_analytics._validation.AnalyticsInputError: column 'amount' has 1 negative value(s) (minimum -3); returns and refunds must be netted into their orders or removed first
    """
    try:
        out = pd.to_numeric(values, errors="raise").astype("float64")
    except (TypeError, ValueError) as exc:
        raise AnalyticsInputError(f"column {name!r} must be numeric: {exc}") from exc
    require_no_nan(out, name=name)
    if not np.isfinite(out.to_numpy()).all():
        raise AnalyticsInputError(f"column {name!r} has infinite values")
    if not allow_negative:
        require_non_negative(
            out, name=name, hint="returns and refunds must be netted into their orders or removed first"
        )
    return out


def coerce_counts(values: pd.Series | np.ndarray, *, name: str) -> np.ndarray:
    """Return ``values`` as a float64 array of finite, non-negative numbers.

    Used for model inputs such as frequency, recency and T.

    Parameters
    ----------
    values : pandas.Series or numpy.ndarray
        The values.
    name : str
        Column name for the message.

    Returns
    -------
    numpy.ndarray
        float64 array.

    Examples
    --------
    >>> coerce_counts([0, 1, 2], name="frequency")
    array([0., 1., 2.])
    """
    try:
        arr = np.asarray(values, dtype="float64")
    except (TypeError, ValueError) as exc:
        raise AnalyticsInputError(f"column {name!r} must be numeric: {exc}") from exc
    require_no_nan(arr, name=name)
    if not np.isfinite(arr).all():
        raise AnalyticsInputError(f"column {name!r} has infinite values")
    require_non_negative(arr, name=name)
    return arr
