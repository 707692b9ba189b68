"""The OLAP pivot page: pick a level per hierarchy and measures, slice by clicking a cell (drill-down),
go back up (roll-up), export the same table as CSV. All SQL is the library's (whitelisted names,
bound values); this module only turns query-string parameters into a `CubeQuery`."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from ecrm.core.exceptions import ValidationFailed
from ecrm.core.web import console_view
from ecrm_analytics import AnalyticsInputError
from ecrm_analytics.olap import MEASURES, CubeQuery

from . import charts, selectors

INT_LEVELS = {"year", "quarter", "month"}
MAX_ROWS = 2000


def _value(level: str, text: str):
    if level in INT_LEVELS:
        try:
            return int(text)
        except ValueError:
            raise ValidationFailed(_("Filter %(level)s must be a number.") % {"level": level},
                                   fields={f"f_{level}": "not a number"}) from None  # fmt: skip
    if level == "day":
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            raise ValidationFailed(_("Filter day must be a date."), fields={"f_day": "not a date"}) from None
    return text


def parse_query(params, hierarchies: dict[str, tuple[str, ...]]) -> CubeQuery:
    """Query-string parameters -> CubeQuery; unknown names are refused, not ignored."""
    levels = {}
    for h, path in hierarchies.items():
        lvl = (params.get(f"lvl_{h}") or "").strip()
        if lvl:
            if lvl not in path:
                raise ValidationFailed(
                    _("Unknown level."), fields={f"lvl_{h}": f"must be one of {', '.join(path)}"}
                )
            levels[h] = lvl
    measures = [m for m in params.getlist("m") if m]
    unknown = [m for m in measures if m not in MEASURES]
    if unknown:
        raise ValidationFailed(_("Unknown measure."), fields={"m": f"must be among {', '.join(MEASURES)}"})
    all_levels = {lvl for path in hierarchies.values() for lvl in path}
    filters = {}
    for key in params:
        if key.startswith("f_"):
            level = key[2:]
            if level not in all_levels:
                raise ValidationFailed(_("Unknown filter."), fields={key: "unknown level"})
            text = params.get(key, "").strip()
            if text:
                filters[level] = _value(level, text)
    if not levels and not filters:
        levels = {"date": "year"}
    return CubeQuery(levels=levels, measures=tuple(measures or ("revenue", "orders", "customers", "aov")),
                     filters=filters, totals=params.get("totals") == "1")  # fmt: skip


def to_params(query: CubeQuery) -> str:
    pairs = [(f"lvl_{h}", lvl) for h, lvl in query.levels.items()]
    pairs += [("m", m) for m in query.measures]
    pairs += [(f"f_{k}", str(v)) for k, v in query.filters.items()]
    if query.totals:
        pairs.append(("totals", "1"))
    return urlencode(pairs)


def _run_query(user, run, params):
    cube = selectors.cube_for_run(user, run)
    hierarchies = cube.levels()
    query = parse_query(params, hierarchies)
    try:
        with selectors._cube_lock:  # one DuckDB connection per process: one query at a time
            frame = cube.query(query)
    except AnalyticsInputError as exc:
        raise ValidationFailed(str(exc)) from None
    return cube, hierarchies, query, frame


@console_view("analytics.view")
def pivot(request: HttpRequest) -> HttpResponse:
    from .views import TABS

    run = selectors.current_run()
    ctx = {"tabs": TABS, "tab": "olap", "run": run, "latest": selectors.latest_run()}
    if run is None:
        return render(request, "analytics/olap.html", ctx)
    cube, hierarchies, query, frame = _run_query(request.user, run, request.GET)
    truncated = len(frame) > MAX_ROWS
    frame = frame.head(MAX_ROWS)
    level_cols = [c for c in frame.columns if c not in MEASURES and c != "grouping"]
    rows = []
    for rec in frame.to_dict("records"):
        cells = []
        for col in level_cols:
            hier = next(h for h, path in hierarchies.items() if col in path)
            value = rec[col]
            link = None
            path = hierarchies[hier]
            i = path.index(col)
            if (
                value is not None
                and query.levels.get(hier) == col
                and i + 1 < len(path)
                and not rec.get("grouping")
            ):
                drilled = query.slice(col, value).drill_down(hier, hierarchies)
                link = to_params(drilled)
            cells.append({"value": value, "drill": link})
        rows.append(
            {
                "cells": cells,
                "measures": [
                    {"value": rec[m], "whole": m in ("orders", "customers")} for m in query.measures
                ],
                "total": bool(rec.get("grouping")),
            }
        )
    roll_ups = []
    for hier, lvl in query.levels.items():
        up = query.roll_up(hier, hierarchies)
        kept = up.levels.get(hier)
        path = hierarchies[hier]
        cut = path.index(kept) if kept else -1
        drop = set(path[cut:]) if kept else set(path)
        up = CubeQuery(levels=up.levels, measures=up.measures, totals=up.totals,
                       filters={k: v for k, v in up.filters.items() if k not in drop})  # fmt: skip
        roll_ups.append({"hierarchy": hier, "level": lvl, "params": to_params(up)})
    chart = None
    plain = [r for r in frame.to_dict("records") if not r.get("grouping")]
    if level_cols and plain and len(plain) <= 200:
        dim = level_cols[-1]
        chart = charts.pivot_bars(plain, dim, query.measures[0])
    ctx.update(
        hierarchies=hierarchies, query=query, level_cols=level_cols, rows=rows, truncated=truncated,
        measures=list(MEASURES), chart=chart, roll_ups=roll_ups, params=to_params(query),
        filters=list(query.filters.items()),
    )  # fmt: skip
    return render(request, "analytics/olap.html", ctx)


def export(request: HttpRequest, run) -> HttpResponse:
    from .views import csv_response

    _cube, _h, query, frame = _run_query(request.user, run, request.GET)
    cols = list(frame.columns)
    return csv_response(f"pivot-run{run.pk}.csv", cols, frame.itertuples(index=False, name=None))
