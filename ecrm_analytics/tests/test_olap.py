"""OLAP cube: exact values on a hand-built shop, operations, safety and bad input."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from ecrm_analytics._validation import AnalyticsInputError
from ecrm_analytics.features import FutureTransactionsWarning
from ecrm_analytics.olap import Cube, CubeQuery, export_csv

END = "2024-12-31"


def shop():
    orders = pd.DataFrame(
        {
            "order_id": [1, 2, 3, 4, 5],
            "customer_id": ["ann", "bob", "ann", "cat", "bob"],
            "order_date": pd.to_datetime(["2023-12-30", "2024-01-15", "2024-02-01", "2024-04-10", "2024-04-11"]),
            "channel": ["web", "store", "web", "app", "web"],
            "country": ["FR", "FR", "FR", "DE", "FR"],
            "city": ["Paris", "Lyon", "Paris", "Berlin", "Lyon"],
        }
    )
    lines = pd.DataFrame(
        {
            "order_id": [1, 2, 2, 3, 4, 4, 5],
            "category": ["Home/Kitchen/Knives", "Home/Garden", "Toys", "Home/Kitchen/Pans",
                         "Toys/Lego", "Home/Kitchen/Knives", "Toys/Lego"],
            "quantity": [1, 2, 1, 1, 3, 1, -1],
            "amount": [40.0, 30.0, 10.0, 25.0, 60.0, 20.0, -20.0],  # order 5 is a return only
        }
    )
    customers = pd.DataFrame({"customer_id": ["ann", "bob"], "segment": ["champions", "at risk"]})
    return orders, lines, customers


@pytest.fixture
def cube():
    o, li, c = shop()
    return Cube(o, li, customers=c, observation_end=END)


def test_totals_and_return_policy(cube):
    df = cube.query(CubeQuery(levels={}))
    row = df.iloc[0]
    # revenue is net of the return; the return-only order 5 is not an order
    assert row["revenue"] == 40 + 30 + 10 + 25 + 60 + 20 - 20
    assert row["units"] == 1 + 2 + 1 + 1 + 3 + 1 - 1
    assert row["orders"] == 4
    assert row["customers"] == 3
    assert row["aov"] == pytest.approx(165 / 4)


def test_date_drill_down_and_roll_up(cube):
    q = CubeQuery(levels={"date": "year"}, measures=("revenue", "orders"))
    assert cube.query(q).to_dict("list") == {"year": [2023, 2024], "revenue": [40.0, 125.0], "orders": [1, 3]}
    q = q.drill_down("date")
    df = cube.query(q)
    assert df[["year", "quarter"]].values.tolist() == [[2023, 4], [2024, 1], [2024, 2]]
    assert df["revenue"].tolist() == [40.0, 65.0, 60.0]
    q = q.drill_down("date")
    assert cube.query(q)["month"].tolist() == [12, 1, 2, 4]
    assert cube.query(q.roll_up("date").roll_up("date").roll_up("date"))["revenue"].tolist() == [165.0]


def test_rollup_totals_with_grouping_flags(cube):
    q = CubeQuery(levels={"date": "quarter"}, measures=("revenue", "orders", "customers"), totals=True)
    df = cube.query(q)
    detail = df[df["grouping"] == 0]
    assert detail["revenue"].tolist() == [40.0, 65.0, 60.0]
    year_sub = df[df["grouping"] == 1]
    assert year_sub[["year", "revenue", "orders", "customers"]].values.tolist() == [[2023, 40.0, 1, 1], [2024, 125.0, 3, 3]]
    grand = df[df["grouping"] == 3]
    assert grand[["revenue", "orders", "customers"]].values.tolist() == [[165.0, 4, 3]]


def test_category_path_levels_and_distinct_orders(cube):
    q = CubeQuery(levels={"category": "category_2"}, measures=("revenue", "orders", "units"), totals=True)
    df = cube.query(q)
    cells = {(r.category_1, r.category_2): (r.revenue, r.orders, r.units) for r in df[df["grouping"] == 0].itertuples()}
    assert cells == {
        ("Home", "Garden"): (30.0, 1, 2.0),
        ("Home", "Kitchen"): (85.0, 3, 3.0),
        ("Toys", "Lego"): (40.0, 1, 2.0),  # order 4 bought, order 5 returned
        ("Toys", None): (10.0, 1, 1.0),
    }
    sub = {r.category_1: (r.revenue, r.orders) for r in df[df["grouping"] == 1].itertuples()}
    assert sub == {"Home": (115.0, 4), "Toys": (50.0, 2)}
    grand = df[df["grouping"] == 3]
    # order 2 and order 4 span both top categories: counted once in the grand total
    assert grand[["revenue", "orders"]].values.tolist() == [[165.0, 4]]


def test_slice_dice_geography_segment(cube):
    base = CubeQuery(levels={"geography": "city"}, measures=("revenue", "orders"))
    df = cube.query(base.slice("country", "FR"))
    assert df[["country", "city", "revenue", "orders"]].values.tolist() == [
        ["FR", "Lyon", 20.0, 1], ["FR", "Paris", 65.0, 2]]
    df = cube.query(base.dice({"channel": ["web", "app"], "year": 2024}))
    assert df[["city", "revenue", "orders"]].values.tolist() == [["Berlin", 80.0, 1], ["Lyon", -20.0, 0], ["Paris", 25.0, 1]]
    seg = cube.query(CubeQuery(levels={"segment": "segment"}, measures=("revenue", "customers")))
    assert seg.values.tolist() == [["at risk", 20.0, 1], ["champions", 65.0, 1], ["unassigned", 80.0, 1]]
    day = cube.query(CubeQuery(levels={}, measures=("revenue",), filters={"day": ("2024-01-01", "2024-02-01")}))
    assert day["revenue"].tolist() == [65.0]


def test_order_grain_matches_line_grain(cube):
    q = CubeQuery(levels={"date": "month", "channel": "channel", "geography": "city"}, totals=True)
    a = cube.con.execute(*cube.sql(q, grain="orders")).df()
    b = cube.con.execute(*cube.sql(q, grain="lines")).df()
    pd.testing.assert_frame_equal(a, b, check_dtype=False)


def test_sql_uses_whitelist_and_parameters(cube):
    evil = "FR'; DROP TABLE fact; --"
    sql, params = cube.sql(CubeQuery(levels={"geography": "country"}, filters={"country": evil}))
    assert evil not in sql and params == [evil]
    assert cube.query(CubeQuery(filters={"country": evil})).empty is False  # aggregate over nothing: one row
    assert cube.n_lines == 7
    with pytest.raises(AnalyticsInputError, match="unknown level"):
        cube.query(CubeQuery(filters={"country; DROP": "x"}))
    with pytest.raises(AnalyticsInputError, match="unknown measure"):
        cube.query(CubeQuery(measures=("revenue); DROP TABLE fact; --",)))
    with pytest.raises(AnalyticsInputError, match="unknown level"):
        cube.query(CubeQuery(levels={"date": "week"}))
    with pytest.raises(AnalyticsInputError, match="unknown hierarchy"):
        CubeQuery().drill_down("colour")


def test_csv_export_neutralises_formulas():
    o, li, c = shop()
    o.loc[0, "city"] = "=HYPERLINK(\"http://evil\")"
    cube = Cube(o, li, observation_end=END)
    text = cube.export_csv(CubeQuery(levels={"geography": "city"}, measures=("revenue",)))
    rows = pd.read_csv(io.StringIO(text))
    assert rows["city"].tolist() == ["Berlin", "'=HYPERLINK(\"http://evil\")", "Lyon", "Paris"]
    assert rows["revenue"].tolist() == [80.0, 40.0, 20.0, 25.0]
    out = export_csv(pd.DataFrame({"-x": ["+1", "@a", "ok", "-2"], "n": [-1, 2, 3, 4]}))
    assert out.splitlines() == ["'-x,n", "'+1,-1", "'@a,2", "ok,3", "'-2,4"]


def test_parquet_and_arrow_inputs(tmp_path):
    o, li, c = shop()
    o.to_parquet(tmp_path / "o.parquet")
    li.to_parquet(tmp_path / "l.parquet")
    import pyarrow as pa

    cube = Cube(str(tmp_path / "o.parquet"), tmp_path / "l.parquet", customers=pa.Table.from_pandas(c),
                observation_end=END)
    assert cube.query(CubeQuery(measures=("revenue", "orders"))).values.tolist() == [[165.0, 4]]


def test_currencies_refused_or_converted():
    o, li, _ = shop()
    o["currency"] = ["EUR", "EUR", "USD", "EUR", "EUR"]
    with pytest.raises(AnalyticsInputError, match="mix currencies EUR, USD"):
        Cube(o, li, observation_end=END)
    with pytest.raises(AnalyticsInputError, match="no rate for currency USD"):
        Cube(o, li, observation_end=END, conversion_rates={"EUR": 1.0})
    cube = Cube(o, li, observation_end=END, conversion_rates={"EUR": 1.0, "USD": 0.5})
    assert cube.query(CubeQuery(measures=("revenue",)))["revenue"].item() == 165.0 - 25.0 * 0.5


def test_future_orders_refused_or_dropped():
    o, li, _ = shop()
    with pytest.raises(AnalyticsInputError, match="2 order.s. dated after"):
        Cube(o, li, observation_end="2024-04-01")
    with pytest.warns(FutureTransactionsWarning, match="dropped 2 order"):
        cube = Cube(o, li, observation_end="2024-04-01", on_future="drop")
    assert cube.query(CubeQuery(measures=("revenue", "orders"))).values.tolist() == [[105.0, 3]]


def test_bad_input():
    o, li, _ = shop()
    with pytest.raises(AnalyticsInputError, match="must not be empty"):
        Cube(o.iloc[:0], li, observation_end=END)
    with pytest.raises(AnalyticsInputError, match="missing column.*'city'"):
        Cube(o.drop(columns="city"), li, observation_end=END)
    bad = pd.concat([li, pd.DataFrame({"order_id": [99], "category": ["Toys"], "quantity": [1], "amount": [5.0]})])
    with pytest.raises(AnalyticsInputError, match="1 line.s. whose order_id is not in orders"):
        Cube(o, bad, observation_end=END)
    with pytest.raises(AnalyticsInputError, match="duplicate order_id"):
        Cube(pd.concat([o, o.iloc[:1]]), li, observation_end=END)
    with pytest.raises(AnalyticsInputError, match="Parquet"):
        Cube("/nonexistent.parquet", li)
    with pytest.raises(AnalyticsInputError, match="finest level"):
        CubeQuery(levels={"geography": "city"}).drill_down("geography")


def test_single_customer_single_order():
    o, li, _ = shop()
    cube = Cube(o.iloc[:1], li.iloc[:1], observation_end=END)
    df = cube.query(CubeQuery(levels={"date": "day"}, measures=("revenue", "orders", "customers", "aov")))
    assert df[["revenue", "orders", "customers", "aov"]].values.tolist() == [[40.0, 1, 1, 40.0]]
    assert df["day"].astype(str).tolist() == ["2023-12-30"]


def test_random_cube_matches_pandas():
    rng = np.random.default_rng(3)
    n_o, n_l = 400, 1500
    o = pd.DataFrame({
        "order_id": np.arange(n_o), "customer_id": rng.integers(0, 80, n_o),
        "order_date": pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 700, n_o), unit="D"),
        "channel": rng.choice(["web", "app"], n_o), "country": rng.choice(["FR", "DE"], n_o),
        "city": rng.choice(["a", "b", "c"], n_o)})
    li = pd.DataFrame({"order_id": rng.integers(0, n_o, n_l), "category": rng.choice(["X/1", "X/2", "Y/1"], n_l),
                       "quantity": rng.integers(1, 3, n_l), "amount": rng.normal(20, 30, n_l).round(2)})
    cube = Cube(o, li, observation_end=END)
    got = cube.query(CubeQuery(levels={"date": "quarter", "category": "category_1"}))
    m = li.merge(o, on="order_id")
    m["year"], m["quarter"] = m["order_date"].dt.year, m["order_date"].dt.quarter
    m["category_1"] = m["category"].str.split("/").str[0]
    buy = m[m["amount"] >= 0]
    g = m.groupby(["year", "quarter", "category_1"])
    exp = pd.DataFrame({"revenue": g["amount"].sum(), "units": g["quantity"].sum().astype(float)})
    bg = buy.groupby(["year", "quarter", "category_1"])
    exp["orders"] = bg["order_id"].nunique().reindex(exp.index, fill_value=0)
    exp["customers"] = bg["customer_id"].nunique().reindex(exp.index, fill_value=0)
    got = got.set_index(["year", "quarter", "category_1"])
    assert got.index.tolist() == exp.index.tolist()
    np.testing.assert_allclose(got["revenue"], exp["revenue"], rtol=1e-12)
    np.testing.assert_array_equal(got["units"], exp["units"])
    np.testing.assert_array_equal(got["orders"], exp["orders"])
    np.testing.assert_array_equal(got["customers"], exp["customers"])


@pytest.mark.parametrize("grain", [None, "lines"])
def test_random_rollup_subtotals_match_brute_force(grain):
    rng = np.random.default_rng(8)
    n_o, n_l = 300, 1200
    o = pd.DataFrame({
        "order_id": np.arange(n_o), "customer_id": rng.integers(0, 60, n_o),
        "order_date": pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 500, n_o), unit="D"),
        "channel": rng.choice(["web", "app"], n_o), "country": "FR", "city": "Paris"})
    li = pd.DataFrame({"order_id": rng.integers(0, n_o, n_l),
                       "category": rng.choice(["X/1", "X/2", "Y/1", "Y/3/z"], n_l),
                       "quantity": 1, "amount": rng.normal(20, 30, n_l).round(2)})
    cube = Cube(o, li, observation_end=END)
    if grain is None:
        q = CubeQuery(levels={"date": "quarter", "category": "category_2"}, measures=("revenue", "orders", "customers"),
                      totals=True)
    else:
        q = CubeQuery(levels={"date": "quarter", "channel": "channel"}, measures=("revenue", "orders", "customers"),
                      totals=True)
    got = cube.con.execute(*cube.sql(q, grain=grain)).df() if grain else cube.query(q)
    m = li.merge(o, on="order_id")
    m["year"], m["quarter"] = m["order_date"].dt.year, m["order_date"].dt.quarter
    parts = m["category"].str.split("/")
    m["category_1"], m["category_2"] = parts.str[0], parts.str[1]
    cols = [c for c in got.columns if c not in ("revenue", "orders", "customers", "grouping")]
    # 3 date prefixes x (3 category prefixes, or 2 channel prefixes)
    assert got["grouping"].nunique() == (9 if grain is None else 6)
    for row in got.itertuples(index=False):
        r = row._asdict()
        sel = pd.Series(True, index=m.index)
        for i, c in enumerate(cols):
            rolled = (r["grouping"] >> (len(cols) - 1 - i)) & 1
            if not rolled:
                sel &= m[c].isna() if pd.isna(r[c]) else (m[c] == r[c])
        cell = m[sel]
        buy = cell[cell["amount"] >= 0]
        assert r["revenue"] == pytest.approx(cell["amount"].sum(), abs=1e-9)
        assert r["orders"] == buy["order_id"].nunique()
        assert r["customers"] == buy["customer_id"].nunique()
