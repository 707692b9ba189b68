"""Reads of the analytics app, each checking who may see what.

Analysts, managers and admins see analytics (`analytics.view`). Everyone who may see a customer
(`customers.view`: agents included) sees that customer's scores on the 360 page, and nothing else.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
from django.db.models import Exists, F, OuterRef, QuerySet

from ecrm.core.exceptions import NotFound, ValidationFailed
from ecrm.core.permissions import check_perm, has_perm
from ecrm.customers.models import Customer

from .models import ChurnBand, ClvBand, CustomerScore, ModelRun, RunResult, RunStatus

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
)  # fmt: skip  (the library's order, best first; kept here so templates need no library import)


def segment_choices() -> list[tuple[str, str]]:
    return [(s, s.capitalize()) for s in SEGMENTS]


def check_analytics(user: Any) -> None:
    check_perm(user, "analytics.view")


def current_run() -> ModelRun | None:
    return ModelRun.objects.filter(kind="customer_models", is_current=True).first()


def latest_run() -> ModelRun | None:
    return ModelRun.objects.order_by("-id").first()


def runs_for_user(user: Any, *, limit: int = 100) -> list[ModelRun]:
    check_analytics(user)
    return list(ModelRun.objects.select_related("triggered_by").order_by("-id")[:limit])


def access_run_for_user(user: Any, run_id: int) -> ModelRun:
    check_analytics(user)
    run = ModelRun.objects.select_related("triggered_by").filter(pk=run_id).first()
    if run is None:
        raise NotFound("No such model run.")
    return run


def run_results(run: ModelRun | None, *names: str) -> dict[str, Any]:
    """{name: data} for the run's stored tables (missing ones are absent)."""
    if run is None:
        return {}
    return dict(RunResult.objects.filter(run=run, name__in=names).values_list("name", "data"))


# --- Scores on a customer --------------------------------------------------------------------------


def score_for_customer(customer: Customer, user: Any) -> CustomerScore | None:
    """The current run's scores of one customer, for anyone who may see the customer."""
    check_perm(user, "customers.view")
    return (
        CustomerScore.objects.select_related("run")
        .filter(customer=customer, run__is_current=True, run__kind="customer_models")
        .first()
    )


def customer_scores_panel(customer: Customer, user: Any) -> dict | None:
    """The 360 page section: shown to whoever may see the customer; says so when not scored yet."""
    if not has_perm(user, "customers.view"):
        return None
    score = score_for_customer(customer, user)
    return {
        "template": "analytics/partials/_customer_scores.html",
        "score": score,
        "has_run": score is not None or current_run() is not None,
        "can_view_analytics": has_perm(user, "analytics.view"),
    }


# --- The customer list filters (registered with customers.selectors) ------------------------------


def _filter_scores(qs: QuerySet, **lookups) -> QuerySet:
    run = current_run()
    if run is None:
        return qs.none()
    return qs.filter(Exists(CustomerScore.objects.filter(run=run, customer_id=OuterRef("pk"), **lookups)))


def filter_rfm_segment(qs: QuerySet, value: str) -> QuerySet:
    if value not in SEGMENTS:
        raise ValidationFailed(
            "Unknown RFM segment.", fields={"rfm_segment": f"must be one of {', '.join(SEGMENTS)}"}
        )
    return _filter_scores(qs, rfm_segment=value)


def filter_churn_band(qs: QuerySet, value: str) -> QuerySet:
    if value not in ChurnBand.values:
        raise ValidationFailed(
            "Unknown churn band.", fields={"churn_band": f"must be one of {', '.join(ChurnBand.values)}"}
        )
    return _filter_scores(qs, churn_band=value)


def filter_clv_band(qs: QuerySet, value: str) -> QuerySet:
    if value not in ClvBand.values:
        raise ValidationFailed(
            "Unknown CLV band.", fields={"clv_band": f"must be one of {', '.join(ClvBand.values)}"}
        )
    return _filter_scores(qs, clv_band=value)


# --- Score lists (churn-risk list, top customers) --------------------------------------------------


@dataclass
class ScoreFilters:
    segment: str = ""
    churn_band: str = ""
    clv_band: str = ""
    cluster: str = ""

    @classmethod
    def from_params(cls, params) -> ScoreFilters:
        f = cls(
            segment=(params.get("segment") or "").strip(),
            churn_band=(params.get("churn_band") or "").strip(),
            clv_band=(params.get("clv_band") or "").strip(),
            cluster=(params.get("cluster") or "").strip(),
        )
        errors = {}
        if f.segment and f.segment not in SEGMENTS:
            errors["segment"] = "unknown segment"
        if f.churn_band and f.churn_band not in ChurnBand.values:
            errors["churn_band"] = f"must be one of {', '.join(ChurnBand.values)}"
        if f.clv_band and f.clv_band not in ClvBand.values:
            errors["clv_band"] = f"must be one of {', '.join(ClvBand.values)}"
        if f.cluster and not f.cluster.isdigit():
            errors["cluster"] = "must be a cluster number"
        if errors:
            raise ValidationFailed("Some filters are not valid.", fields=errors)
        return f

    def apply(self, qs: QuerySet) -> QuerySet:
        if self.segment:
            qs = qs.filter(rfm_segment=self.segment)
        if self.churn_band:
            qs = qs.filter(churn_band=self.churn_band)
        if self.clv_band:
            qs = qs.filter(clv_band=self.clv_band)
        if self.cluster:
            qs = qs.filter(cluster=int(self.cluster))
        return qs


def scores_for_user(user: Any, run: ModelRun, filters: ScoreFilters, *, order: str = "churn") -> QuerySet:
    """The run's scores with their customers (one query), riskiest or most valuable first."""
    check_analytics(user)
    qs = filters.apply(CustomerScore.objects.filter(run=run)).select_related("customer")
    # NULLs last, not excluded: when the churn model could not run, the list still lists the customers.
    if order == "clv":
        return qs.order_by(F("clv_12m").desc(nulls_last=True), "customer_id")
    return qs.order_by(F("churn_risk").desc(nulls_last=True), "customer_id")


def score_page(user: Any, run: ModelRun, filters: ScoreFilters, *, order: str, page: int, size: int = 50):
    qs = scores_for_user(user, run, filters, order=order)
    page = max(1, page)
    rows = list(qs[(page - 1) * size : page * size + 1])
    return rows[:size], len(rows) > size


def product_names(skus: set[str]) -> dict[str, str]:
    """SKU -> product name, in one query (rules store SKUs; people read names)."""
    from ecrm.commerce.models import Product

    return dict(Product.objects.filter(sku__in=list(skus)[:2000]).values_list("sku", "name"))


def money(value: Decimal | None) -> str:
    return "" if value is None else f"{value:.2f}"


# --- OLAP -----------------------------------------------------------------------------------------

_cube_lock = threading.Lock()
_cube_cache: dict[str, Any] = {}


def cube_for_run(user: Any, run: ModelRun):
    """The run's DuckDB cube, built once per process from the Parquet files the run wrote."""
    from ecrm_analytics.olap import Cube

    check_analytics(user)
    info = run_results(run, "olap").get("olap")
    if not info or not Path(info["dir"], "orders.parquet").exists():
        raise NotFound("This run has no OLAP data (it failed, or its files were purged).")
    key = info["dir"]
    with _cube_lock:
        cube = _cube_cache.get(key)
        if cube is None:
            for old in _cube_cache.values():
                old.close()
            _cube_cache.clear()
            folder = Path(info["dir"])
            customers = folder / "customers.parquet"
            cube = Cube(
                str(folder / "orders.parquet"), str(folder / "lines.parquet"),
                customers=str(customers) if customers.exists() else None,
                # the files hold only the window's orders, in shop-local time up to the end of that day
                observation_end=pd.Timestamp(run.observation_end) + pd.Timedelta(days=1), on_future="drop",
                threads=2,
            )  # fmt: skip
            _cube_cache[key] = cube
    return cube


def scored_runs_exist() -> bool:
    return ModelRun.objects.filter(status=RunStatus.SUCCEEDED).exists()
