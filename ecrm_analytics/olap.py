"""An OLAP cube over orders and order lines, computed by DuckDB in-process.

The cube joins order lines to their orders (and optionally to a customers table for
the segment) once, into a DuckDB table with the dimension levels precomputed, so that
every query is a single scan-and-aggregate:

============  ==========================================  ==============================
hierarchy     levels (coarse to fine)                     from
============  ==========================================  ==============================
``date``      ``year``, ``quarter``, ``month``, ``day``    ``orders.order_date``
``category``  ``category_1`` .. ``category_<depth>``      ``order_lines.category`` path
``geography`` ``country``, ``city``                       ``orders.country``, ``.city``
``channel``   ``channel``                                 ``orders.channel``
``segment``   ``segment``                                 ``customers.segment`` or
                                                          ``orders.segment``
============  ==========================================  ==============================

Measures: ``revenue`` (sum of line amounts), ``units`` (sum of quantities), ``orders``
and ``customers`` (distinct counts) and ``aov`` (average order value = revenue / orders).

Data policies
-------------
* **Returns are netted.** A line with a negative amount or quantity is a return: it
  lowers ``revenue`` and ``units`` in the cell where it falls. ``orders`` and
  ``customers`` count only orders with at least one line of amount >= 0, so a
  return-only order is not an order; ``aov`` is net revenue over those orders.
* **Mixed currencies are refused** unless ``conversion_rates`` (currency -> multiplier
  into the reporting currency) is given, when ``orders`` has a ``currency`` column.
* **Future-dated orders are refused** (``on_future="raise"``, default) or dropped with a
  :class:`~ecrm_analytics.features.FutureTransactionsWarning` giving the count
  (``on_future="drop"``); "future" means after ``observation_end`` (default now, UTC).
* Lines whose order is unknown are refused: the cube would otherwise silently lose
  their revenue.
* A missing segment becomes ``"unassigned"``; a missing category level is NULL.

SQL safety: every identifier in a query comes from the fixed whitelist above (a name
outside it raises :class:`AnalyticsInputError`); every filter value is a bound
parameter.

References
----------
Gray, J., Chaudhuri, S., Bosworth, A., Layman, A., Reichart, D., Venkatrao, M.,
Pellow, F. and Pirahesh, H. (1997). Data cube: a relational aggregation operator
generalizing group-by, cross-tab, and sub-totals. *Data Mining and Knowledge
Discovery*, 1(1), 29-53.
"""

from __future__ import annotations

import io
import itertools
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import duckdb
import pandas as pd

from ecrm_analytics._validation import AnalyticsInputError
from ecrm_analytics.features import FutureTransactionsWarning, _naive_utc_ts

__all__ = ["Cube", "CubeQuery", "HIERARCHIES", "MEASURES", "export_csv", "neutralise_csv_cell"]

#: Measures and their SQL over the line-grain table (``fact``).
MEASURES: dict[str, str] = {
    "revenue": "SUM(revenue)",
    "units": "SUM(units)",
    "orders": "COUNT(DISTINCT purchase_order_id)",
    "customers": "COUNT(DISTINCT purchase_customer_id)",
    "aov": "SUM(revenue) / NULLIF(COUNT(DISTINCT purchase_order_id), 0)",
}
# The same measures over the order-grain table (``fact_orders``, one row per order),
# used when no line-level (category) level is grouped or filtered: there an order is
# one row, so the distinct order count becomes a plain filtered count.
_ORDER_GRAIN_MEASURES: dict[str, str] = {
    "revenue": "SUM(revenue)",
    "units": "SUM(units)",
    "orders": "COUNT(*) FILTER (WHERE is_purchase)",
    "customers": "COUNT(DISTINCT purchase_customer_id)",
    "aov": "SUM(revenue) / NULLIF(COUNT(*) FILTER (WHERE is_purchase), 0)",
}

_BASE_HIERARCHIES: dict[str, tuple[str, ...]] = {
    "date": ("year", "quarter", "month", "day"),
    "geography": ("country", "city"),
    "channel": ("channel",),
    "segment": ("segment",),
}
#: Hierarchies and their levels with the default category depth of 3.
HIERARCHIES: dict[str, tuple[str, ...]] = {
    **_BASE_HIERARCHIES,
    "category": ("category_1", "category_2", "category_3"),
}

_ORDER_COLS = ("order_id", "customer_id", "order_date", "channel", "country", "city")
_LINE_COLS = ("order_id", "category", "quantity", "amount")


@dataclass(frozen=True)
class CubeQuery:
    """What to compute: the level per hierarchy, the measures, filters and subtotals.

    Parameters
    ----------
    levels : mapping of str to str
        Hierarchy -> finest level to group by (``{"date": "month"}``). Every coarser
        level of that hierarchy is grouped by (and returned) too, so ``"month"`` gives
        ``year``, ``quarter`` and ``month`` columns. A hierarchy not named is summed
        over.
    measures : sequence of str
        Names from :data:`MEASURES`.
    filters : mapping of str to value
        Level -> value (equality), list/set of values (IN), or, for ``day`` only, a
        ``(start, end)`` tuple (inclusive range).
    totals : bool
        Add subtotal rows for every coarser level of each grouped hierarchy and a grand
        total (SQL ``ROLLUP``); the ``grouping`` column flags them (a bit per grouped
        column, 1 = summed over, in column order with the last column as bit 0).

    Examples
    --------
    >>> q = CubeQuery(levels={"date": "year"}, measures=("revenue",))
    >>> q.drill_down("date").levels
    {'date': 'quarter'}
    >>> q.roll_up("date").levels
    {}
    >>> q.slice("country", "FR").dice({"channel": ["web", "app"]}).filters
    {'country': 'FR', 'channel': ['web', 'app']}
    """

    levels: Mapping[str, str] = field(default_factory=dict)
    measures: Sequence[str] = ("revenue", "orders", "customers", "units", "aov")
    filters: Mapping[str, Any] = field(default_factory=dict)
    totals: bool = False

    def slice(self, level: str, value: Any) -> CubeQuery:
        """Fix one level to one value (the other filters are kept)."""
        return replace(self, filters={**self.filters, level: value})

    def dice(self, filters: Mapping[str, Any]) -> CubeQuery:
        """Add filters on several levels at once."""
        return replace(self, filters={**self.filters, **filters})

    def drill_down(self, hierarchy: str, hierarchies: Mapping[str, Sequence[str]] = HIERARCHIES) -> CubeQuery:
        """Go one level finer in ``hierarchy`` (start at its top level if not grouped)."""
        path = _hierarchy(hierarchy, hierarchies)
        current = self.levels.get(hierarchy)
        if current is None:
            nxt = path[0]
        else:
            i = path.index(current)
            if i + 1 >= len(path):
                raise AnalyticsInputError(f"{hierarchy!r} is already at its finest level {current!r}")
            nxt = path[i + 1]
        return replace(self, levels={**self.levels, hierarchy: nxt})

    def roll_up(self, hierarchy: str, hierarchies: Mapping[str, Sequence[str]] = HIERARCHIES) -> CubeQuery:
        """Go one level coarser in ``hierarchy``; above its top level it is summed over."""
        path = _hierarchy(hierarchy, hierarchies)
        current = self.levels.get(hierarchy)
        if current is None:
            raise AnalyticsInputError(f"{hierarchy!r} is not grouped: nothing to roll up")
        i = path.index(current)
        levels = dict(self.levels)
        if i == 0:
            del levels[hierarchy]
        else:
            levels[hierarchy] = path[i - 1]
        return replace(self, levels=levels)


def _hierarchy(name: str, hierarchies: Mapping[str, Sequence[str]]) -> Sequence[str]:
    if name not in hierarchies:
        raise AnalyticsInputError(f"unknown hierarchy {name!r}; known: {', '.join(hierarchies)}")
    return hierarchies[name]


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


class Cube:
    """An OLAP cube over orders and order lines, on an in-process DuckDB database.

    Parameters
    ----------
    orders : pandas.DataFrame, pyarrow.Table or str/path to a Parquet file
        One row per order: ``order_id``, ``customer_id``, ``order_date``, ``channel``,
        ``country``, ``city``; optional ``currency`` and ``segment``.
    order_lines : pandas.DataFrame, pyarrow.Table or str/path to a Parquet file
        One row per line: ``order_id``, ``category`` (a path such as
        ``"Home/Kitchen/Knives"``), ``quantity``, ``amount`` (line total; negative for
        returns).
    customers : pandas.DataFrame, pyarrow.Table or Parquet path, optional
        ``customer_id`` and ``segment``; takes precedence over ``orders.segment``.
    conversion_rates : mapping of str to float, optional
        Currency -> multiplier into the reporting currency; required when orders mix
        currencies.
    observation_end : datetime-like, optional
        Orders after it are future-dated. Default: now (UTC).
    on_future : {"raise", "drop"}
        Refuse future-dated orders (default), or drop them with a warning.
    category_sep : str
        Separator of the category path.
    category_depth : int
        Number of category levels kept (``category_1`` ..).
    threads : int, optional
        DuckDB worker threads (default: DuckDB's choice, all cores).

    Examples
    --------
    >>> import pandas as pd
    >>> orders = pd.DataFrame({
    ...     "order_id": [1, 2, 3], "customer_id": ["a", "b", "a"],
    ...     "order_date": pd.to_datetime(["2024-01-05", "2024-02-10", "2024-04-01"]),
    ...     "channel": ["web", "store", "web"], "country": ["FR", "FR", "DE"],
    ...     "city": ["Paris", "Lyon", "Berlin"]})
    >>> lines = pd.DataFrame({
    ...     "order_id": [1, 1, 2, 3], "category": ["Home/Kitchen", "Toys", "Home/Garden", "Toys"],
    ...     "quantity": [1, 2, 1, 3], "amount": [30.0, 20.0, 50.0, 15.0]})
    >>> cube = Cube(orders, lines, observation_end="2024-12-31")
    >>> cube.query(CubeQuery(levels={"date": "quarter"}, measures=("revenue", "orders", "aov")))
       year  quarter  revenue  orders   aov
    0  2024        1    100.0       2  50.0
    1  2024        2     15.0       1  15.0
    >>> q = CubeQuery(levels={"category": "category_1"}, measures=("revenue", "units"), totals=True)
    >>> cube.query(q)
      category_1  revenue  units  grouping
    0       Home     80.0    2.0         0
    1       Toys     35.0    5.0         0
    2       None    115.0    7.0         1
    """

    def __init__(
        self,
        orders,
        order_lines,
        *,
        customers=None,
        conversion_rates: Mapping[str, float] | None = None,
        observation_end=None,
        on_future: str = "raise",
        category_sep: str = "/",
        category_depth: int = 3,
        threads: int | None = None,
    ) -> None:
        if on_future not in ("raise", "drop"):
            raise AnalyticsInputError(f"on_future must be 'raise' or 'drop', got {on_future!r}")
        if not 1 <= int(category_depth) <= 10:
            raise AnalyticsInputError("category_depth must be between 1 and 10")
        self.hierarchies: dict[str, tuple[str, ...]] = {
            **_BASE_HIERARCHIES,
            "category": tuple(f"category_{i}" for i in range(1, int(category_depth) + 1)),
        }
        config = {"threads": int(threads)} if threads else {}
        self.con = duckdb.connect(":memory:", config=config)
        ocols = self._load("orders_in", orders, _ORDER_COLS, "orders")
        self._load("lines_in", order_lines, _LINE_COLS, "order_lines")
        ccols = None
        if customers is not None:
            ccols = self._load("customers_in", customers, ("customer_id", "segment"), "customers")
        con = self.con

        n_orders = con.execute("SELECT COUNT(*) FROM orders_in").fetchone()[0]
        n_lines = con.execute("SELECT COUNT(*) FROM lines_in").fetchone()[0]
        if n_orders == 0 or n_lines == 0:
            raise AnalyticsInputError("orders and order_lines must not be empty")
        for table, col in (("orders_in", "order_id"), ("orders_in", "order_date"), ("lines_in", "order_id"),
                           ("lines_in", "amount"), ("lines_in", "quantity")):
            n_null = con.execute(f"SELECT COUNT(*) FROM {table} WHERE {_quote(col)} IS NULL").fetchone()[0]  # noqa: S608
            if n_null:
                raise AnalyticsInputError(f"{table[:-3]} column {col!r} has {n_null} missing value(s)")
        dup = con.execute("SELECT COUNT(*) - COUNT(DISTINCT order_id) FROM orders_in").fetchone()[0]
        if dup:
            raise AnalyticsInputError(f"orders has {dup} duplicate order_id value(s)")
        orphans = con.execute(
            "SELECT COUNT(*) FROM lines_in l ANTI JOIN orders_in o ON l.order_id = o.order_id"
        ).fetchone()[0]
        if orphans:
            raise AnalyticsInputError(f"order_lines has {orphans} line(s) whose order_id is not in orders")

        # Currency: one currency, or a full conversion table.
        rate_sql = "1.0"
        if "currency" in ocols:
            present = [r[0] for r in con.execute(
                "SELECT DISTINCT currency FROM orders_in ORDER BY 1").fetchall()]
            if None in present:
                raise AnalyticsInputError("orders column 'currency' has missing values")
            if conversion_rates is None:
                if len(present) > 1:
                    raise AnalyticsInputError(
                        f"orders mix currencies {', '.join(map(str, present))}: revenue in different "
                        "currencies cannot be added; pass conversion_rates (currency -> multiplier into "
                        "the reporting currency)")
            else:
                missing = [c for c in present if c not in conversion_rates]
                if missing:
                    raise AnalyticsInputError(f"conversion_rates has no rate for currency {', '.join(missing)}")
                rates = pd.DataFrame({"currency": list(conversion_rates),
                                      "rate": [float(v) for v in conversion_rates.values()]})
                if not (rates["rate"] > 0).all():
                    raise AnalyticsInputError("conversion_rates must be positive")
                con.register("rates_in", rates)
                rate_sql = "(SELECT r.rate FROM rates_in r WHERE r.currency = o.currency)"

        end = _naive_utc_ts(observation_end if observation_end is not None else pd.Timestamp.now(tz="UTC"))
        n_future = con.execute(
            "SELECT COUNT(*) FROM orders_in WHERE CAST(order_date AS TIMESTAMP) > ?", [end.to_pydatetime()]
        ).fetchone()[0]
        if n_future:
            if on_future == "raise":
                raise AnalyticsInputError(
                    f"orders has {n_future} order(s) dated after the observation end {end}; fix the dates, "
                    "or pass on_future='drop' to drop them")
            warnings.warn(f"dropped {n_future} order(s) dated after the observation end {end}",
                          FutureTransactionsWarning, stacklevel=2)

        if ccols is not None:
            seg_sql = "COALESCE(c.segment, 'unassigned')"
            join_c = "LEFT JOIN (SELECT DISTINCT ON (customer_id) customer_id, segment FROM customers_in) c " \
                     "ON o.customer_id = c.customer_id"
        elif "segment" in ocols:
            seg_sql, join_c = "COALESCE(o.segment, 'unassigned')", ""
        else:
            seg_sql, join_c = "'unassigned'", ""
        cats = ",\n".join(
            f"NULLIF(trim(split_part(l.category, $sep, {i})), '') AS category_{i}"
            for i in range(1, int(category_depth) + 1)
        )
        # Built from fixed fragments only; the separator and end date are parameters.
        sql = f"""
            CREATE TABLE fact AS
            SELECT
                l.order_id AS order_id,
                o.customer_id AS customer_id,
                CAST(o.order_date AS DATE) AS day,
                CAST(year(o.order_date) AS SMALLINT) AS year,
                CAST(quarter(o.order_date) AS TINYINT) AS quarter,
                CAST(month(o.order_date) AS TINYINT) AS month,
                CAST(o.channel AS VARCHAR) AS channel,
                CAST(o.country AS VARCHAR) AS country,
                CAST(o.city AS VARCHAR) AS city,
                CAST({seg_sql} AS VARCHAR) AS segment,
                {cats},
                CAST(l.quantity AS DOUBLE) AS units,
                CAST(l.amount AS DOUBLE) * {rate_sql} AS revenue,
                CASE WHEN l.amount >= 0 THEN l.order_id END AS purchase_order_id,
                CASE WHEN l.amount >= 0 THEN o.customer_id END AS purchase_customer_id
            FROM lines_in l
            JOIN orders_in o ON l.order_id = o.order_id
            {join_c}
            WHERE CAST(o.order_date AS TIMESTAMP) <= $end
        """  # noqa: S608
        con.execute(sql, {"sep": category_sep, "end": end.to_pydatetime()})
        for name in ("orders_in", "lines_in", "customers_in", "rates_in"):
            try:
                con.unregister(name)
            except Exception:  # noqa: S110, BLE001 - a Parquet input is a table, not a registered view
                con.execute(f"DROP TABLE IF EXISTS {name}")
        con.execute("""
            CREATE TABLE fact_orders AS
            SELECT order_id, customer_id, day, year, quarter, month, channel, country, city, segment,
                   SUM(revenue) AS revenue, SUM(units) AS units,
                   bool_or(purchase_order_id IS NOT NULL) AS is_purchase,
                   CASE WHEN bool_or(purchase_order_id IS NOT NULL) THEN customer_id END AS purchase_customer_id
            FROM fact
            GROUP BY order_id, customer_id, day, year, quarter, month, channel, country, city, segment
        """)
        self.n_lines = con.execute("SELECT COUNT(*) FROM fact").fetchone()[0]

    def _load(self, name: str, data, required: Sequence[str], what: str) -> list[str]:
        if isinstance(data, str | os.PathLike):
            path = os.fspath(data)
            if not os.path.exists(path):
                raise AnalyticsInputError(f"{what}: no such Parquet file {path!r}")
            # name is one of our fixed table names; the path is a bound parameter
            self.con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet(?)", [path])  # noqa: S608
        elif isinstance(data, pd.DataFrame) or type(data).__module__.startswith("pyarrow"):
            self.con.register(name, data)
        else:
            raise AnalyticsInputError(
                f"{what} must be a pandas DataFrame, a pyarrow Table or a Parquet path, got {type(data).__name__}")
        cols = [r[0] for r in self.con.execute(f"DESCRIBE {name}").fetchall()]
        missing = [c for c in required if c not in cols]
        if missing:
            raise AnalyticsInputError(
                f"{what} is missing column(s) {', '.join(map(repr, missing))}; present: {', '.join(map(repr, cols))}")
        return cols

    def levels(self) -> dict[str, tuple[str, ...]]:
        """The hierarchies of this cube and their levels, coarse to fine."""
        return dict(self.hierarchies)

    def sql(self, query: CubeQuery, *, grain: str | None = None) -> tuple[str, list]:
        """The SQL text and parameters :meth:`query` runs (for inspection and tests).

        ``grain`` forces the table: ``"lines"`` or ``"orders"`` (default: the order
        grain when no category level is grouped or filtered, else the line grain).
        """
        all_levels = {lvl: h for h, path in self.hierarchies.items() for lvl in path}
        groups: list[list[str]] = []
        for hierarchy, level in query.levels.items():
            path = _hierarchy(hierarchy, self.hierarchies)
            if level not in path:
                raise AnalyticsInputError(
                    f"unknown level {level!r} for {hierarchy!r}; levels: {', '.join(path)}")
            groups.append(list(path[: path.index(level) + 1]))
        if not query.measures:
            raise AnalyticsInputError("at least one measure is needed")
        for m in query.measures:
            if m not in MEASURES:
                raise AnalyticsInputError(f"unknown measure {m!r}; measures: {', '.join(MEASURES)}")
        where, params = [], []
        for level, value in query.filters.items():
            if level not in all_levels:
                raise AnalyticsInputError(f"unknown level {level!r} in filters; levels: {', '.join(all_levels)}")
            col = _quote(level)
            if isinstance(value, tuple):
                if level != "day" or len(value) != 2:
                    raise AnalyticsInputError("a (start, end) range filter is only allowed on 'day'")
                where.append(f"{col} BETWEEN ? AND ?")
                params.extend(pd.Timestamp(v).date() for v in value)
            elif isinstance(value, list | set | frozenset):
                values = list(value)
                if not values:
                    raise AnalyticsInputError(f"filter on {level!r} has an empty list of values")
                where.append(f"{col} IN ({', '.join('?' for _ in values)})")
                params.extend(values)
            elif value is None:
                where.append(f"{col} IS NULL")
            else:
                where.append(f"{col} = ?")
                params.append(pd.Timestamp(value).date() if level == "day" else value)
        flat = [c for g in groups for c in g]
        line_level = any(c.startswith("category_") for c in [*flat, *query.filters])
        if grain is None:
            grain = "lines" if line_level else "orders"
        if grain not in ("lines", "orders") or (grain == "orders" and line_level):
            raise AnalyticsInputError(f"grain must be 'lines' or 'orders' (orders only without category), got {grain!r}")
        where_sql = (" WHERE " + " AND ".join(where)) if where else ""
        order_by = ", ".join(f"{_quote(c)} NULLS LAST" for c in flat)
        if query.totals and flat:
            order_by = "grouping" + (", " + order_by if order_by else "")

        if not any(m in ("orders", "customers", "aov") for m in query.measures):
            # Additive measures only: one pass, subtotals with ROLLUP.
            table = "fact" if grain == "lines" else "fact_orders"
            select = [_quote(c) for c in flat] + [f"{MEASURES[m]} AS {_quote(m)}" for m in query.measures]
            sql = f"SELECT {', '.join(select)}"
            if query.totals and flat:
                sql += f", GROUPING({', '.join(map(_quote, flat))}) AS grouping"
            sql += f" FROM {table}{where_sql}"
            if flat:
                if query.totals:
                    sql += " GROUP BY " + ", ".join(f"ROLLUP({', '.join(map(_quote, g))})" for g in groups)
                else:
                    sql += " GROUP BY " + ", ".join(map(_quote, flat))
                sql += " ORDER BY " + order_by
            return sql, params

        # Distinct counts. DuckDB's COUNT(DISTINCT) under ROLLUP is slow, so: reduce the
        # data to one row per (order, category prefix) -- the order-level columns are
        # functions of the order -- and count rows with a plain GROUP BY per grouping
        # set, UNION ALL. A subtotal that rolls a category level up needs its own
        # reduction (an order spans several categories), so there is one reduced table
        # per category depth used; depth 0 at the order grain is the fact_orders table.
        order_cols = [c for c in flat if not c.startswith("category_")]
        if query.totals:
            per_hierarchy = [[tuple(g[:i]) for i in range(len(g), -1, -1)] for g in groups]
            sets = [tuple(c for part in combo for c in part) for combo in itertools.product(*per_hierarchy)]
        else:
            sets = [tuple(flat)]
        ctes: dict[int, str] = {}
        cte_params: list = []

        def reduced(depth: int) -> str:
            if depth not in ctes:
                keys = [_quote(c) for c in order_cols] + [_quote(f"category_{i}") for i in range(1, depth + 1)]
                key_list = "".join(k + ", " for k in keys)
                # identifiers come from the level whitelist; filter values are bound parameters
                body = (
                    "SELECT " + key_list + "order_id, SUM(revenue) AS r, SUM(units) AS u, "
                    "bool_or(purchase_order_id IS NOT NULL) AS p, MAX(purchase_customer_id) AS pc "
                    "FROM fact" + where_sql + " GROUP BY " + key_list + "order_id"
                )
                ctes[depth] = f"r{depth} AS MATERIALIZED ({body})"
                cte_params.extend(params)
            return f"r{depth}"

        agg = {
            "revenue": "SUM(r)",
            "units": "SUM(u)",
            "orders": "COUNT(*) FILTER (WHERE p)",
            "customers": "COUNT(DISTINCT pc)",
            "aov": "SUM(r) / NULLIF(COUNT(*) FILTER (WHERE p), 0)",
        }
        branches, branch_params = [], []
        for cols in sets:
            depth = sum(1 for c in cols if c.startswith("category_"))
            select = [(_quote(c) if c in cols else f"NULL AS {_quote(c)}") for c in flat]
            if grain == "orders":
                # fact_orders is already one row per order: no reduction to materialise
                select += [f"{_ORDER_GRAIN_MEASURES[m]} AS {_quote(m)}" for m in query.measures]
                source = "fact_orders" + where_sql
                branch_params.extend(params)
            else:
                select += [f"{agg[m]} AS {_quote(m)}" for m in query.measures]
                source = reduced(depth)
            if query.totals and flat:
                bits = sum(1 << (len(flat) - 1 - i) for i, c in enumerate(flat) if c not in cols)
                select.append(f"{bits} AS grouping")
            branch = f"SELECT {', '.join(select)} FROM {source}"  # noqa: S608 - whitelisted identifiers
            if cols:
                branch += " GROUP BY " + ", ".join(map(_quote, cols))
            branches.append(branch)
        sql = ("WITH " + ", ".join(ctes.values()) + " ") if ctes else ""
        sql += "SELECT * FROM (" + " UNION ALL ".join(branches) + ")"  # noqa: S608
        if order_by:
            sql += " ORDER BY " + order_by
        return sql, cte_params + branch_params

    def query(self, query: CubeQuery) -> pd.DataFrame:
        """Run ``query`` and return one row per cell (plus subtotal rows with ``totals``).

        Parameters
        ----------
        query : CubeQuery

        Returns
        -------
        pandas.DataFrame
            The grouped level columns, then the measures (``orders``, ``customers`` as
            int64; the others float64), then ``grouping`` when ``totals`` is set. Cells
            with no lines do not appear.
        """
        sql, params = self.sql(query)
        df = self.con.execute(sql, params).df()
        for m in ("orders", "customers"):
            if m in df.columns:
                df[m] = df[m].astype("int64")
        for m in ("revenue", "units", "aov"):
            if m in df.columns:
                df[m] = df[m].astype("float64")
        if "grouping" in df.columns:
            df["grouping"] = df["grouping"].astype("int64")
        return df

    def export_csv(self, query: CubeQuery, path_or_buf=None) -> str | None:
        """Run ``query`` and write it as CSV with spreadsheet-formula cells neutralised.

        See :func:`export_csv`.
        """
        return export_csv(self.query(query), path_or_buf)

    def close(self) -> None:
        """Close the DuckDB connection."""
        self.con.close()


_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_csv_cell(value: Any) -> Any:
    """Prefix a text cell that a spreadsheet would run as a formula with ``'``.

    Text starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return is
    prefixed (OWASP "CSV injection"); numbers are left alone, so a negative revenue
    stays a number.

    Examples
    --------
    >>> neutralise_csv_cell("=HYPERLINK(\\"http://x\\")")
    '\\'=HYPERLINK("http://x")'
    >>> neutralise_csv_cell(-3.5), neutralise_csv_cell("Paris")
    (-3.5, 'Paris')
    """
    if isinstance(value, str) and value.startswith(_DANGEROUS):
        return "'" + value
    return value


def export_csv(df: pd.DataFrame, path_or_buf=None) -> str | None:
    """Write ``df`` as CSV (no index), neutralising formula-like text cells and headers.

    Parameters
    ----------
    df : pandas.DataFrame
    path_or_buf : str, path or file-like, optional
        Where to write; if omitted the CSV text is returned.

    Returns
    -------
    str or None

    Examples
    --------
    >>> import pandas as pd
    >>> print(export_csv(pd.DataFrame({"city": ["=cmd|' /C calc'!A0", "Lyon"], "revenue": [-5.0, 7.0]})))
    city,revenue
    '=cmd|' /C calc'!A0,-5.0
    Lyon,7.0
    <BLANKLINE>
    """
    out = df.copy()
    out.columns = [neutralise_csv_cell(str(c)) for c in out.columns]
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(neutralise_csv_cell)
    if path_or_buf is None:
        buf = io.StringIO()
        out.to_csv(buf, index=False, lineterminator="\n")
        return buf.getvalue()
    out.to_csv(path_or_buf, index=False, lineterminator="\n")
    return None
