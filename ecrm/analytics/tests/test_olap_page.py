"""The pivot page: levels and measures from the query string, drill-down by clicking a cell, roll-up,
unknown names refused, and the same table as CSV."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from ecrm.analytics.services import run_analytics
from ecrm.commerce.models import Order

from .factories import make_shop

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_with_run(db, login):
    make_shop()
    run = run_analytics()
    assert run.steps["olap"]["status"] == "ok", run.steps
    return login("manager")


def test_default_is_revenue_by_year_and_sums_to_the_orders(client_with_run):
    response = client_with_run.get(reverse("analytics:olap"))
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(
        b"".join(client_with_run.get(reverse("analytics:export", args=["olap"])).streaming_content).decode("utf-8-sig")
    )))  # fmt: skip
    assert rows[0] == ["year", "revenue", "orders", "customers", "aov"]
    # Lines carry the whole order total in this shop, so line revenue equals order revenue.
    assert sum(float(r[1]) for r in rows[1:]) == pytest.approx(
        float(sum(Order.objects.values_list("total", flat=True)))
    )
    assert sum(int(r[2]) for r in rows[1:]) == Order.objects.count()


def test_drill_down_link_slices_the_cell_and_goes_one_level_finer_and_roll_up_comes_back(client_with_run):
    page = client_with_run.get(
        reverse("analytics:olap"), {"lvl_date": "year", "m": ["revenue", "orders"]}
    ).content.decode()
    year = str(Order.objects.order_by("-placed_at").first().placed_at.year)
    link = f'href="?lvl_date=quarter&amp;m=revenue&amp;m=orders&amp;f_year={year}"'
    assert link in page
    drilled = client_with_run.get(
        reverse("analytics:olap"), {"lvl_date": "quarter", "m": ["revenue", "orders"], "f_year": year}
    )
    body = drilled.content.decode()
    assert "<th>quarter</th>" in body and f"year = {year}" in body
    assert 'class="roll-up" href="?lvl_date=year&amp;m=revenue&amp;m=orders"' in body
    csv_rows = list(csv.reader(io.StringIO(b"".join(client_with_run.get(
        reverse("analytics:export", args=["olap"]), {"lvl_date": "quarter", "m": "orders", "f_year": year}
    ).streaming_content).decode("utf-8-sig"))))  # fmt: skip
    in_year = Order.objects.filter(placed_at__year=int(year)).count()
    assert csv_rows[0] == ["year", "quarter", "orders"]
    assert sum(int(r[2]) for r in csv_rows[1:]) == in_year


def test_category_and_city_dimensions_with_subtotals(client_with_run):
    response = client_with_run.get(reverse("analytics:olap"), {"lvl_category": "category_1", "lvl_geography": "city",
                                                              "m": "units", "totals": "1"})  # fmt: skip
    body = response.content.decode()
    assert response.status_code == 200
    for value in ("Home", "Food", "Shanghai", "Beijing", "Total"):
        assert value in body


@pytest.mark.parametrize(
    "params", [{"lvl_date": "week"}, {"m": "profit"}, {"f_password": "x"}, {"f_year": "last"}]
)
def test_unknown_levels_measures_and_filters_are_refused(client_with_run, params):
    response = client_with_run.get(reverse("analytics:olap"), params)
    assert response.status_code == 422
