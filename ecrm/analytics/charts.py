"""ECharts options built on the server from a run's tables, so the page script only draws them.

Every chart here has the same numbers in a table on its page and in a CSV export (see `exports`).
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

PALETTE = ["#3b5bdb", "#12b886", "#f59f00", "#e8590c", "#7048e8", "#1098ad", "#c2255c", "#5c940d"]


def _base(**extra) -> dict[str, Any]:
    return {"color": PALETTE, "animation": False, "tooltip": {"trigger": "axis"},
            "grid": {"left": 60, "right": 60, "top": 40, "bottom": 50}, **extra}  # fmt: skip


def revenue_over_time(rows: list[dict]) -> dict:
    return _base(
        legend={"data": [_("Revenue"), _("Orders")]},
        xAxis={"type": "category", "data": [r["month"] for r in rows]},
        yAxis=[{"type": "value", "name": _("Revenue")}, {"type": "value", "name": _("Orders")}],
        series=[
            {"name": _("Revenue"), "type": "bar", "data": [r["revenue"] for r in rows]},
            {"name": _("Orders"), "type": "line", "yAxisIndex": 1, "data": [r["orders"] for r in rows]},
        ],
    )


def rfm_grid(grid: list[dict]) -> dict:
    cells = [[g["fm"] - 1, g["r"] - 1, g["customers"]] for g in grid]
    top = max((c[2] for c in cells), default=1)
    return _base(
        tooltip={"position": "top"},
        xAxis={"type": "category", "name": _("FM score"), "data": ["1", "2", "3", "4", "5"]},
        yAxis={"type": "category", "name": _("R score"), "data": ["1", "2", "3", "4", "5"]},
        visualMap={
            "min": 0,
            "max": top,
            "calculable": True,
            "orient": "horizontal",
            "left": "center",
            "bottom": 0,
            "inRange": {"color": ["#f1f3f9", "#3b5bdb"]},
        },  # fmt: skip
        grid={"left": 60, "right": 30, "top": 30, "bottom": 80},
        series=[{"type": "heatmap", "data": cells, "label": {"show": True}}],
    )


def bars(labels: list[str], values: list[float], name: str, *, horizontal: bool = False) -> dict:
    label = {"interval": 0, "rotate": 0} if horizontal else {"interval": 0, "rotate": 30}
    if horizontal:
        label |= {"width": 220, "overflow": "break"}
    cat = {
        "type": "category",
        "data": labels,
        "axisLabel": label,
        "inverse": horizontal,
    }  # horizontal bars read top-down in the order given
    val = {"type": "value"}
    return _base(
        xAxis=val if horizontal else cat,
        yAxis=cat if horizontal else val,
        grid={"left": 240 if horizontal else 60, "right": 30, "top": 30, "bottom": 80},
        series=[{"name": name, "type": "bar", "data": values}],
    )


def clv_histogram(hist: list[dict], currency: str) -> dict:
    hist = [h for h in hist if h["from"] is not None and h["to"] is not None]
    labels = [f"{h['from']:.0f}–{h['to']:.0f}" for h in hist]
    return bars(labels, [h["customers"] for h in hist], _("Customers")) | {
        "xAxis": {"type": "category", "data": labels, "name": currency, "axisLabel": {"rotate": 40}}
    }


def cohort_heatmap(cohorts: dict) -> dict:
    cells = []
    for i, row in enumerate(cohorts["retention"]):
        for j, v in enumerate(row):
            if v is not None and j > 0:
                cells.append([j, i, round(100 * v, 1)])
    top = max((c[2] for c in cells), default=100)
    return _base(
        tooltip={"position": "top"},
        xAxis={
            "type": "category",
            "name": _("Months since first order"),
            "data": [str(m) for m in cohorts["months"]],
        },
        yAxis={"type": "category", "data": cohorts["cohorts"], "inverse": True},
        visualMap={
            "min": 0,
            "max": top,
            "calculable": True,
            "orient": "horizontal",
            "left": "center",
            "bottom": 0,
            "inRange": {"color": ["#fff5f0", "#e8590c"]},
        },  # fmt: skip
        grid={"left": 80, "right": 30, "top": 30, "bottom": 90},
        series=[{"type": "heatmap", "data": cells, "label": {"show": len(cohorts["months"]) <= 13}}],
    )


def rules_scatter(rules: list[dict]) -> dict:
    return _base(
        tooltip={"trigger": "item"},
        xAxis={"type": "value", "name": _("Support"), "scale": True},
        yAxis={"type": "value", "name": _("Confidence"), "scale": True},
        series=[{
            "type": "scatter", "name": _("Rules"),
            "data": [[r["support"], r["confidence"], r["lift"], f"{r['antecedent']} → {r['consequent']}"]
                     for r in rules[:300]],
            "symbolSize": 10,
        }],
    )  # fmt: skip


def cluster_sizes(clusters: list[dict]) -> dict:
    return bars([f"{c['cluster']}: {c['label']}" for c in clusters], [c["size"] for c in clusters], _("Customers"),
                horizontal=True)  # fmt: skip


def pivot_bars(rows: list[dict], dimension: str, measure: str) -> dict:
    return bars([str(r.get(dimension)) for r in rows], [r.get(measure) for r in rows], measure)
