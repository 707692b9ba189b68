"""Analytics pages: dashboards over the current run, the runs list, the run button, and the pivot.

Thin: read through selectors, draw with server-built chart options, export the same numbers as CSV.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterable, Iterator

from django.contrib import messages
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from ecrm.core.exceptions import EcrmError, NotFound, ValidationFailed
from ecrm.core.web import console_view, flash_error
from ecrm_analytics.olap import neutralise_csv_cell

from . import charts, olap_views, selectors, services
from .models import ChurnBand, ClvBand, CustomerScore

TABS = [  # lazy: built at import, translated per request
    ("dashboard", gettext_lazy("Overview")), ("rfm", gettext_lazy("RFM segments")), ("clv", gettext_lazy("Lifetime value")),
    ("churn", gettext_lazy("Churn risk")), ("clusters", gettext_lazy("Clusters")), ("cohorts", gettext_lazy("Cohorts")),
    ("rules", gettext_lazy("Basket rules")), ("olap", gettext_lazy("Pivot")), ("runs", gettext_lazy("Model runs")),
]  # fmt: skip


def _context(request: HttpRequest, tab: str, **extra) -> dict:
    run = selectors.current_run()
    return {"tabs": TABS, "tab": tab, "run": run, "latest": selectors.latest_run(), **extra}


def _page(request, tab: str, template: str, names: tuple[str, ...], build) -> HttpResponse:
    ctx = _context(request, tab)
    results = selectors.run_results(ctx["run"], *names)
    ctx["results"] = results
    if ctx["run"] is not None:
        ctx.update(build(ctx["run"], results))
    return render(request, template, ctx)


@console_view("analytics.view")
def dashboard(request: HttpRequest) -> HttpResponse:
    def build(run, results):
        revenue = results.get("revenue") or []
        clv = results.get("clv") or {}
        return {
            "revenue_rows": revenue,
            "chart": charts.revenue_over_time(revenue),
            "figures": {
                "customers": run.counts.get("scored_customers"),
                "orders": run.counts.get("orders"),
                "revenue": round(sum(r["revenue"] for r in revenue), 2),
                "clv_total": clv.get("total"),
                "high_churn": CustomerScore.objects.filter(run=run, churn_band=ChurnBand.HIGH).count(),
            },
        }

    return _page(request, "dashboard", "analytics/dashboard.html", ("revenue", "clv"), build)


@console_view("analytics.view")
def rfm(request: HttpRequest) -> HttpResponse:
    def build(run, results):
        data = results.get("rfm") or {"grid": [], "segments": []}
        segs = data["segments"]
        return {
            "grid_chart": charts.rfm_grid(data["grid"]),
            "segment_chart": charts.bars(
                [s["segment"] for s in segs], [s["customers"] for s in segs], _("Customers"), horizontal=True
            ),  # fmt: skip
            "segments": segs,
            "grid": sorted(data["grid"], key=lambda g: (-g["r"], g["fm"])),
        }

    return _page(request, "rfm", "analytics/rfm.html", ("rfm",), build)


@console_view("analytics.view")
def clv(request: HttpRequest) -> HttpResponse:
    def build(run, results):
        data = results.get("clv") or {"histogram": []}
        top = list(
            CustomerScore.objects.filter(run=run).exclude(clv_12m=None).select_related("customer")
            .order_by("-clv_12m", "customer_id")[:25]
        )  # fmt: skip
        return {"chart": charts.clv_histogram(data["histogram"], run.currency), "histogram": data["histogram"],
                "top": top, "clv": data}  # fmt: skip

    return _page(request, "clv", "analytics/clv.html", ("clv",), build)


@console_view("analytics.view")
def churn(request: HttpRequest) -> HttpResponse:
    filters = selectors.ScoreFilters.from_params(request.GET)
    page = _int(request.GET.get("page"), 1)

    def build(run, results):
        rows, more = selectors.score_page(request.user, run, filters, order="churn", page=page)
        bands = dict(
            CustomerScore.objects.filter(run=run).exclude(churn_band="").values_list("churn_band")
            .annotate(n=Count("id")).values_list("churn_band", "n")
        )  # fmt: skip
        labels = [str(label) for _v, label in ChurnBand.choices]
        return {
            "rows": rows, "more": more, "page": page, "filters": filters,
            "bands": [(v, label, bands.get(v, 0)) for v, label in ChurnBand.choices],
            "chart": charts.bars(labels, [bands.get(v, 0) for v in ChurnBand.values], _("Customers")),
            "metrics": run.metrics.get("churn"), "step": run.steps.get("churn", {}),
            "segments": selectors.SEGMENTS, "churn_bands": ChurnBand.choices, "clv_bands": ClvBand.choices,
            "query": _query_without(request, "page"),
        }  # fmt: skip

    if request.htmx:
        ctx = _context(request, "churn")
        if ctx["run"] is not None:
            ctx.update(build(ctx["run"], {}))
        return render(request, "analytics/partials/_churn_rows.html", ctx)
    return _page(request, "churn", "analytics/churn.html", (), build)


@console_view("analytics.view")
def clusters(request: HttpRequest) -> HttpResponse:
    def build(run, results):
        rows = results.get("clusters") or []
        feature_cols = [k for k in (rows[0] if rows else {}) if k.endswith("_mean")]
        rows = [{**r, "features": [r[c] for c in feature_cols]} for r in rows]
        return {"chart": charts.cluster_sizes(rows), "rows": rows, "feature_cols": feature_cols,
                "step": run.steps.get("clusters", {}), "params": run.parameters.get("clusters")}  # fmt: skip

    return _page(request, "clusters", "analytics/clusters.html", ("clusters",), build)


@console_view("analytics.view")
def cohorts(request: HttpRequest) -> HttpResponse:
    def build(run, results):
        data = results.get("cohorts")
        if not data:
            return {"step": run.steps.get("cohorts", {})}
        table = [
            {"cohort": c, "size": s, "cells": [None if v is None else round(100 * v, 1) for v in row]}
            for c, s, row in zip(data["cohorts"], data["sizes"], data["retention"], strict=True)
        ]
        return {"chart": charts.cohort_heatmap(data), "months": data["months"], "table": table,
                "step": run.steps.get("cohorts", {})}  # fmt: skip

    return _page(request, "cohorts", "analytics/cohorts.html", ("cohorts",), build)


@console_view("analytics.view")
def rules(request: HttpRequest) -> HttpResponse:
    def build(run, results):
        data = results.get("rules") or {}
        rows = data.get("rules", [])
        also = (results.get("also_bought") or [])[:100]
        names = selectors.product_names(
            {sku for r in rows[:200] for sku in (*r["antecedent"].split(", "), *r["consequent"].split(", "))}
            | {str(r["item"]) for r in also}
            | {str(r["also_bought"]) for r in also}
        )
        rows = [
            {
                **r,
                "antecedent_name": _named(r["antecedent"], names),
                "consequent_name": _named(r["consequent"], names),
            }
            for r in rows[:200]
        ]
        also = [
            {
                **r,
                "item_name": _named(str(r["item"]), names),
                "also_name": _named(str(r["also_bought"]), names),
            }
            for r in also
        ]
        return {"chart": charts.rules_scatter(rows), "rows": rows, "data": data,
                "also": also, "step": run.steps.get("rules", {}),
                "params": run.parameters.get("rules")}  # fmt: skip

    return _page(request, "rules", "analytics/rules.html", ("rules", "also_bought"), build)


@console_view("analytics.view")
def runs(request: HttpRequest) -> HttpResponse:
    ctx = _context(request, "runs", runs=selectors.runs_for_user(request.user))
    return render(request, "analytics/runs.html", ctx)


@console_view("analytics.view")
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run_obj = selectors.access_run_for_user(request.user, run_id)
    summary = services.run_summary(run_obj)
    ctx = _context(
        request, "runs", detail=run_obj, summary_json=json.dumps(summary, indent=2, ensure_ascii=False)
    )
    return render(request, "analytics/run_detail.html", ctx)


@require_POST
@console_view("analytics.view")
def run_request(request: HttpRequest) -> HttpResponse:
    end = (request.POST.get("observation_end") or "").strip()
    try:
        observation_end = dt.date.fromisoformat(end) if end else None
    except ValueError:
        flash_error(
            request, ValidationFailed(_("The observation end must be a date (YYYY-MM-DD)."), fields={})
        )
        return redirect("analytics:runs")
    try:
        run = services.do_request_run(actor=request.user, observation_end=observation_end)
    except EcrmError as exc:
        flash_error(request, exc)
        return redirect("analytics:runs")
    messages.success(request, _("Run #%(id)s is queued.") % {"id": run.pk})
    if request.htmx:
        return render(request, "analytics/partials/_run_progress.html", {"progress_run": run})
    return redirect("analytics:runs")


@console_view("analytics.view")
def run_progress(request: HttpRequest, run_id: int) -> HttpResponse:
    run_obj = selectors.access_run_for_user(request.user, run_id)
    response = render(request, "analytics/partials/_run_progress.html", {"progress_run": run_obj})
    if not run_obj.is_active and request.htmx:
        response["HX-Refresh"] = "true"  # done: reload so the dashboards show the new run
    return response


# --- CSV ----------------------------------------------------------------------------------------


class _Echo:
    def write(self, value):
        return value


def csv_response(filename: str, header: list[str], rows: Iterable[Iterable]) -> StreamingHttpResponse:
    """Streamed CSV with every text cell neutralised against spreadsheet formula injection."""
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield "\ufeff"  # Excel opens UTF-8 (Chinese names) correctly with a BOM
        yield writer.writerow([neutralise_csv_cell(h) for h in header])
        for row in rows:
            yield writer.writerow([neutralise_csv_cell(v) for v in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _score_rows(qs) -> Iterator[list]:
    for s in qs.iterator(chunk_size=2000):
        yield [s.customer_id, s.customer.display_name, s.customer.email or "", s.rfm_segment,
               f"{s.r_score}{s.f_score}{s.m_score}", _round(s.probability_alive), _round(s.expected_purchases_12m),
               selectors.money(s.clv_12m), s.currency, _round(s.churn_risk), s.churn_band,
               "; ".join(s.reasons_display), "" if s.cluster is None else s.cluster, s.cluster_label]  # fmt: skip


SCORE_HEADER = ["customer_id", "name", "email", "rfm_segment", "rfm_code", "probability_alive",
                "expected_purchases_12m", "clv_12m", "currency", "churn_risk", "churn_band", "churn_reasons",
                "cluster", "cluster_label"]  # fmt: skip


@console_view("analytics.view")
def export(request: HttpRequest, name: str) -> HttpResponse:
    run = selectors.current_run()
    if run is None:
        raise NotFound(_("There is no model run yet."))
    stamp = f"run{run.pk}"
    if name in ("churn", "top_customers"):
        filters = selectors.ScoreFilters.from_params(request.GET)
        qs = selectors.scores_for_user(
            request.user, run, filters, order="churn" if name == "churn" else "clv"
        )
        return csv_response(f"{name}-{stamp}.csv", SCORE_HEADER, _score_rows(qs))
    results = selectors.run_results(
        run, "revenue", "rfm", "clv", "clusters", "cohorts", "rules", "also_bought"
    )
    if name == "revenue":
        rows = results.get("revenue") or []
        return csv_response(
            f"revenue-{stamp}.csv",
            ["month", "revenue", "orders", "customers", "currency"],
            ([r["month"], r["revenue"], r["orders"], r["customers"], run.currency] for r in rows),
        )
    if name == "rfm_segments":
        rows = (results.get("rfm") or {}).get("segments", [])
        return csv_response(
            f"rfm-segments-{stamp}.csv",
            ["segment", "customers", "revenue"],
            ([r["segment"], r["customers"], r["revenue"]] for r in rows),
        )
    if name == "rfm_grid":
        rows = (results.get("rfm") or {}).get("grid", [])
        return csv_response(
            f"rfm-grid-{stamp}.csv",
            ["r_score", "fm_score", "customers"],
            ([r["r"], r["fm"], r["customers"]] for r in rows),
        )
    if name == "clv_histogram":
        rows = (results.get("clv") or {}).get("histogram", [])
        return csv_response(
            f"clv-histogram-{stamp}.csv",
            ["clv_from", "clv_to", "customers"],
            ([r["from"], r["to"], r["customers"]] for r in rows),
        )
    if name == "clusters":
        rows = results.get("clusters") or []
        cols = list(rows[0]) if rows else ["cluster", "size", "share", "label"]
        return csv_response(f"clusters-{stamp}.csv", cols, ([r.get(c) for c in cols] for r in rows))
    if name == "cohorts":
        data = results.get("cohorts") or {"months": [], "cohorts": [], "sizes": [], "retention": []}
        header = ["cohort", "customers", *[f"month_{m}" for m in data["months"]]]
        return csv_response(
            f"cohort-retention-{stamp}.csv",
            header,
            (
                [c, s, *row]
                for c, s, row in zip(data["cohorts"], data["sizes"], data["retention"], strict=True)
            ),
        )
    if name == "rules":
        rows = (results.get("rules") or {}).get("rules", [])
        cols = ["antecedent", "consequent", "support", "confidence", "lift", "count"]
        return csv_response(f"basket-rules-{stamp}.csv", cols, ([r[c] for c in cols] for r in rows))
    if name == "also_bought":
        rows = results.get("also_bought") or []
        cols = ["item", "rank", "also_bought", "support", "confidence", "lift", "count"]
        return csv_response(f"also-bought-{stamp}.csv", cols, ([r.get(c) for c in cols] for r in rows))
    if name == "olap":
        return olap_views.export(request, run)
    raise NotFound(_("No such export."))


def _named(skus: str, names: dict[str, str]) -> str:
    return ", ".join(f"{names[s]} ({s})" if s in names else s for s in skus.split(", "))


def _round(v: float | None, digits: int = 4):
    return "" if v is None else round(v, digits)


def _int(value, default: int) -> int:
    try:
        return max(1, int(value))
    except (TypeError, ValueError):
        return default


def _query_without(request: HttpRequest, *keys: str) -> str:
    params = request.GET.copy()
    for k in keys:
        params.pop(k, None)
    return params.urlencode()


olap = olap_views.pivot
