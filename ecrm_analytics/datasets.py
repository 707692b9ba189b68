"""Reference data for validation and benchmarks.

* :func:`load_cdnow_sample_transactions` reads the CDNOW cohort sample (2,357
  customers who made their first purchase at CDNOW in the first quarter of 1997,
  followed to the end of June 1998) from the data files shipped inside the
  installed ``lifetimes`` package. Nothing is downloaded; ``lifetimes`` is only a
  test/benchmark dependency, so the loaders raise a clear error when it is absent.
* :func:`generate_bgnbd_customers` and :func:`generate_transactions` simulate data
  for benchmarks, vectorised so that millions of customers take seconds.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

from ._validation import AnalyticsInputError

__all__ = [
    "CDNOW_CALIBRATION_END",
    "load_cdnow_sample_transactions",
    "generate_bgnbd_customers",
    "generate_transactions",
]

#: End of the 39-week calibration period used by Fader, Hardie & Lee (2005).
CDNOW_CALIBRATION_END = "1997-09-30"


def _lifetimes_dataset(name: str) -> Path:
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        raise AnalyticsInputError(
            "the CDNOW files ship with the 'lifetimes' package; install the dev requirements "
            "(pip install -r requirements-dev.txt) to use them"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / name
    if not path.exists():
        raise AnalyticsInputError(f"{path} not found in the installed lifetimes package")
    return path


def load_cdnow_sample_transactions() -> pd.DataFrame:
    """Load the raw CDNOW cohort-sample transactions (6,919 lines, 2,357 customers).

    The file ``CDNOW_sample.txt`` has one line per purchase occasion record:
    master customer id, sample customer id (1..2357), date, number of CDs and
    dollar value. Several lines can share a customer and a day.

    Returns
    -------
    pandas.DataFrame
        Columns ``customer_id`` (int, the 1..2357 sample id used in the papers),
        ``date`` (datetime64, midnight), ``quantity`` (int) and ``amount`` (float,
        US dollars), in file order.

    References
    ----------
    Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005). "Counting your customers
    the easy way: an alternative to the Pareto/NBD model". Marketing Science 24(2),
    275-284. Data: http://brucehardie.com/datasets/

    Examples
    --------
    >>> tx = load_cdnow_sample_transactions()
    >>> len(tx), tx["customer_id"].nunique()
    (6919, 2357)
    >>> str(tx["date"].min().date()), str(tx["date"].max().date())
    ('1997-01-01', '1998-06-30')
    """
    raw = pd.read_csv(
        _lifetimes_dataset("CDNOW_sample.txt"),
        sep=r"\s+",
        header=None,
        names=["master_id", "customer_id", "date", "quantity", "amount"],
        dtype={"master_id": "int64", "customer_id": "int64", "date": str, "quantity": "int64"},
    )
    raw["date"] = pd.to_datetime(raw["date"], format="%Y%m%d")
    return raw[["customer_id", "date", "quantity", "amount"]]


def generate_bgnbd_customers(
    n_customers: int,
    *,
    r: float = 0.243,
    alpha: float = 4.414,
    a: float = 0.793,
    b: float = 2.426,
    T: float | np.ndarray = 39.0,
    spend_params: tuple[float, float, float] | None = (6.25, 3.74, 15.44),
    time_step: float | None = 1.0 / 7.0,
    seed: int = 0,
) -> pd.DataFrame:
    """Simulate customers from the BG/NBD model (and optionally Gamma-Gamma spend).

    Each customer draws a purchase rate ``lambda ~ Gamma(r, 1/alpha)`` and a dropout
    probability ``p ~ Beta(a, b)``; after the first purchase at time 0, purchases
    arrive as a Poisson process and after each repeat purchase the customer becomes
    inactive with probability ``p``. Everything is vectorised: the number of repeat
    purchases before dropout is geometric, the number inside ``(0, T]`` follows from
    order statistics of uniform arrival times (no per-purchase loop). Times are
    floored to ``time_step`` (default: one day in weeks) as real data are.

    Parameters
    ----------
    n_customers : int
        Number of customers.
    r, alpha, a, b : float
        BG/NBD parameters (defaults: the CDNOW estimates).
    T : float or numpy.ndarray
        Age of each customer in model time units.
    spend_params : (p, q, gamma) or None
        Gamma-Gamma parameters for the mean spend of repeat purchases; ``None``
        omits the ``monetary_value`` column.
    time_step : float or None
        Floor recency and T to multiples of this step; ``None`` keeps continuous times.
    seed : int
        Seed for :func:`numpy.random.default_rng`.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id`` (0..n-1), columns ``frequency``, ``recency``, ``T``
        and, with ``spend_params``, ``monetary_value`` (0 for one-time buyers).

    References
    ----------
    Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005). "Counting your customers
    the easy way". Marketing Science 24(2), 275-284.

    Examples
    --------
    >>> df = generate_bgnbd_customers(1000, seed=1)
    >>> df.shape, bool((df["recency"] <= df["T"]).all())
    ((1000, 4), True)
    """
    rng = np.random.default_rng(seed)
    T_arr = np.broadcast_to(np.asarray(T, dtype="float64"), (n_customers,)).copy()
    lam = rng.gamma(r, 1.0 / alpha, n_customers)
    p = rng.beta(a, b, n_customers)
    # Dropout can only happen right after a repeat purchase, so the number of repeat
    # purchases up to and including the one after which the customer drops out is
    # J ~ Geometric(p) on {1, 2, ...}. With N ~ Poisson(lambda * T) arrivals of the
    # uncensored process in (0, T], the customer makes k = min(N, J) repeat purchases,
    # and the last one is the k-th of N uniform arrival times: T * Beta(k, N - k + 1).
    dropout_after = rng.geometric(np.clip(p, 1e-12, 1.0))
    n_poisson = rng.poisson(lam * T_arr)
    k = np.minimum(n_poisson, dropout_after)
    safe_k = np.maximum(k, 1)
    last = np.where(k > 0, rng.beta(safe_k, np.maximum(n_poisson - safe_k + 1, 1)) * T_arr, 0.0)
    frequency = k.astype("float64")
    if time_step:
        T_arr = np.floor(T_arr / time_step + 1e-9) * time_step
        last = np.minimum(np.floor(last / time_step) * time_step, T_arr)
    out = pd.DataFrame({"frequency": frequency, "recency": last, "T": T_arr})
    out.index.name = "customer_id"
    if spend_params is not None:
        sp, sq, sg = spend_params
        nu = rng.gamma(sq, 1.0 / sg, n_customers)  # per-customer spend rate
        # mean of x Gamma(p, nu) draws is Gamma(p * x, x * nu)
        shape = np.where(k > 0, sp * k, 1.0)
        mean_spend = rng.gamma(shape, 1.0 / (np.maximum(k, 1) * nu))
        out["monetary_value"] = np.where(k > 0, mean_spend, 0.0)
    return out


def generate_transactions(
    n_lines: int,
    *,
    n_customers: int | None = None,
    start: str = "2020-01-01",
    days: int = 730,
    lines_per_order: float = 3.0,
    seed: int = 0,
) -> pd.DataFrame:
    """Simulate order lines for RFM benchmarks.

    Customers are drawn with a heavy-tailed activity (a few buy often), orders fall
    on random days, and each order has on average ``lines_per_order`` lines that
    share its timestamp, so that merging same-day purchases has work to do.

    Parameters
    ----------
    n_lines : int
        Number of order lines.
    n_customers : int, optional
        Number of distinct customers (default ``n_lines // 20``).
    start : str
        First day.
    days : int
        Length of the period in days.
    lines_per_order : float
        Mean number of lines per order.
    seed : int
        Random seed.

    Returns
    -------
    pandas.DataFrame
        Columns ``customer_id`` (int64), ``ordered_at`` (datetime64[ns]) and
        ``amount`` (float64, positive).

    Examples
    --------
    >>> tx = generate_transactions(1000, seed=2)
    >>> list(tx.columns), len(tx)
    (['customer_id', 'ordered_at', 'amount'], 1000)
    """
    rng = np.random.default_rng(seed)
    n_customers = n_customers or max(n_lines // 20, 1)
    n_orders = max(int(n_lines / lines_per_order), 1)
    weights = rng.pareto(1.5, n_customers) + 1.0
    cum = np.cumsum(weights)
    order_customer = np.searchsorted(cum, rng.random(n_orders) * cum[-1]).clip(0, n_customers - 1)
    order_time = (
        np.datetime64(start, "ns")
        + (rng.integers(0, days * 86_400, n_orders) * 1_000_000_000).astype("timedelta64[ns]")
    )
    line_order = np.sort(rng.integers(0, n_orders, n_lines))
    return pd.DataFrame(
        {
            "customer_id": order_customer[line_order].astype("int64"),
            "ordered_at": order_time[line_order],
            "amount": np.round(rng.gamma(2.0, 15.0, n_lines) + 0.5, 2),
        }
    )
