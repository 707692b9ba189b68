"""Writes of the analytics app: requesting a run, running it, and storing what it produced.

`run_analytics` is the one entry point the schedule, the console button and `manage.py run_analytics`
all end up in. A run is recorded from its start; it becomes the current one only when every core
model fitted and its holdout metrics are not worse than the current run's by the configured margin.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import shutil
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from ecrm.core.audit import record_audit
from ecrm.core.exceptions import Conflict, EcrmError, ValidationFailed
from ecrm.core.permissions import check_perm
from ecrm_analytics import AnalyticsInputError

from .conf import conf
from .extraction import extract
from .models import CustomerScore, ModelRun, RunResult, RunStatus, RunTrigger
from .pipeline import Pipeline, jsonable

logger = logging.getLogger(__name__)

# A queued or running run older than this is considered dead (the worker was killed), so it no
# longer blocks a new one.
STALE_AFTER = dt.timedelta(hours=6)


def olap_dir_for(run: ModelRun) -> Path:
    """Where a run's cube inputs live: under VAR_DIR, with a random part so that two databases
    (tests, several shops on one host) never share a run's files."""
    return Path(settings.VAR_DIR) / "analytics" / f"run-{run.pk}-{secrets.token_hex(4)}"


def active_run() -> ModelRun | None:
    since = timezone.now() - STALE_AFTER
    return ModelRun.objects.filter(
        status__in=[RunStatus.QUEUED, RunStatus.RUNNING], created_at__gte=since
    ).first()


def do_request_run(*, actor, observation_end: dt.date | None = None) -> ModelRun:
    """Queue a run from the console; refused while another run is queued or running."""
    check_perm(actor, "analytics.view")
    if observation_end and observation_end > timezone.localdate():
        raise ValidationFailed(
            "The observation end cannot be in the future.", fields={"observation_end": "future"}
        )
    with transaction.atomic():
        running = active_run()
        if running is not None:
            raise Conflict(
                f"Run #{running.pk} is already {running.get_status_display().lower()}.", code="run_active"
            )
        run = ModelRun.objects.create(
            status=RunStatus.QUEUED,
            trigger=RunTrigger.CONSOLE,
            triggered_by=actor,
            observation_end=observation_end,
        )
        record_audit(actor=actor, action="analytics.run_requested", obj=run,
                     after={"observation_end": observation_end.isoformat() if observation_end else None})  # fmt: skip
        from .tasks import run_analytics_task

        transaction.on_commit(lambda: run_analytics_task(run.pk))
    return run


def _progress(run: ModelRun, pct: int, stage: str) -> None:
    run.progress, run.stage = pct, stage
    ModelRun.objects.filter(pk=run.pk).update(progress=pct, stage=stage)


def run_analytics(
    *, observation_end: dt.date | None = None, triggered_by=None, trigger: str = RunTrigger.SCHEDULE,
    run_id: int | None = None,
) -> ModelRun:  # fmt: skip
    """Extract, fit, score and store; returns the recorded run (succeeded, rejected or failed)."""
    started = time.perf_counter()
    now = timezone.now()
    if run_id is not None:
        run = ModelRun.objects.get(pk=run_id)
        observation_end = observation_end or run.observation_end
    else:
        run = ModelRun(trigger=trigger, triggered_by=triggered_by)
    observation_end = observation_end or timezone.localdate(now)
    run.observation_end = observation_end
    run.status = RunStatus.RUNNING
    run.started_at = now
    run.time_unit = conf("TIME_UNIT")
    run.parameters = {"settings": jsonable({k: conf(k) for k in (
        "TIME_UNIT", "MERGE_PERIOD", "HOLDOUT_DAYS", "CLV_MONTHS", "DISCOUNT_RATE_MONTHLY", "BAD_RUN_MARGIN",
        "CHURN_AUC_MARGIN", "CHURN_HORIZON_DAYS", "CLUSTER_K_RANGE", "RULES_MIN_SUPPORT")})}  # fmt: skip
    run.save()
    # Shown next to every score: which run, which window, which time unit.
    run.version = f"{run.pk}.{observation_end:%Y%m%d}.{conf('TIME_UNIT')}"
    ModelRun.objects.filter(pk=run.pk).update(version=run.version)
    durations: dict[str, float] = {}
    try:
        _progress(run, 5, "extracting orders")
        t0 = time.perf_counter()
        data = extract(observation_end=observation_end, now=now)
        durations["extract"] = round(time.perf_counter() - t0, 3)
        run.counts, run.currency = data.counts, data.currency
        outcome = Pipeline(
            data, observation_end, lambda p, s: _progress(run, p, s), olap_dir=olap_dir_for(run)
        ).run()
        durations.update(outcome.durations)
        run.parameters = {**run.parameters, **outcome.parameters}
        run.metrics = outcome.metrics
        run.steps = outcome.steps
        run.calibration_end = (
            dt.date.fromisoformat(outcome.metrics["calibration_end"])
            if "calibration_end" in outcome.metrics
            else None
        )
        run.holdout_end = observation_end if run.calibration_end else None
        run.counts = {**run.counts, "scored_customers": len(outcome.scores)}
        reason = _worse_than_current(run)
        _progress(run, 75, "storing results")
        t0 = time.perf_counter()
        with transaction.atomic():
            RunResult.objects.bulk_create(
                [RunResult(run=run, name=name, data=data_) for name, data_ in outcome.results.items()]
            )
        if reason:
            run.status, run.error = RunStatus.REJECTED, reason
        else:
            _store_scores(run, outcome.scores, currency=data.currency, computed_at=timezone.now())
            run.status = RunStatus.SUCCEEDED
        durations["store"] = round(time.perf_counter() - t0, 3)
    except (AnalyticsInputError, EcrmError) as exc:
        run.status = RunStatus.FAILED
        run.error = getattr(exc, "message", None) or str(exc)
    except Exception as exc:  # recorded on the run for the runs page; the traceback goes to the log
        logger.exception("analytics run %s failed", run.pk)
        run.status = RunStatus.FAILED
        run.error = f"{type(exc).__name__}: {exc}\n" + "".join(traceback.format_exception(exc)[-3:])
    durations["total"] = round(time.perf_counter() - started, 3)
    run.durations = durations
    run.finished_at = timezone.now()
    run.progress = 100
    run.stage = run.get_status_display()
    previous = (
        ModelRun.objects.filter(kind=run.kind, is_current=True)
        .exclude(pk=run.pk)
        .values_list("pk", flat=True)
        .first()
    )
    with transaction.atomic():
        if run.status == RunStatus.SUCCEEDED:
            ModelRun.objects.filter(kind=run.kind, is_current=True).exclude(pk=run.pk).update(
                is_current=False
            )
            run.is_current = True
        run.save()
    if run.status == RunStatus.SUCCEEDED:
        emit_score_changes(run, previous)
        purge_old_scores(kind=run.kind)
    return run


def _worse_than_current(run: ModelRun) -> str:
    """Why this run must not replace the current one ('' when it may)."""
    current = ModelRun.objects.filter(kind=run.kind, is_current=True).exclude(pk=run.pk).first()
    if current is None:
        return ""
    margin = float(conf("BAD_RUN_MARGIN"))
    new_mae = (run.metrics.get("clv") or {}).get("mae")
    old_mae = (current.metrics.get("clv") or {}).get("mae")
    if new_mae is not None and old_mae is not None and new_mae > old_mae * (1 + margin):
        return (
            f"Holdout error of expected purchases per customer (MAE {new_mae:.4f}) is more than "
            f"{margin:.0%} worse than the current run #{current.pk} ({old_mae:.4f}); its scores were kept."
        )
    new_auc = (run.metrics.get("churn") or {}).get("auc")
    old_auc = (current.metrics.get("churn") or {}).get("auc")
    auc_margin = float(conf("CHURN_AUC_MARGIN"))
    if new_auc is not None and old_auc is not None and new_auc < old_auc - auc_margin:
        return (
            f"Churn holdout AUC {new_auc:.3f} is more than {auc_margin:.2f} below the current run "
            f"#{current.pk} ({old_auc:.3f}); its scores were kept."
        )
    return ""


SCORE_COLUMNS = (
    "run_id", "customer_id", "r_score", "f_score", "m_score", "rfm_segment", "frequency", "recency", "tenure",
    "monetary_value", "probability_alive", "expected_purchases_12m", "clv_12m", "clv_band", "currency", "churn_risk",
    "churn_band", "churn_reasons", "cluster", "cluster_label", "computed_at",
)  # fmt: skip


def _column(frame: pd.DataFrame, name: str, default, kind=None) -> list:
    """A column as Python values, NaN as None (the database's NULL)."""
    if name not in frame.columns:
        return [default] * len(frame)
    col = frame[name]
    if kind is int:
        return [
            None if v is None else int(v) for v in col.astype("Int64").astype(object).where(col.notna(), None)
        ]
    if kind is float:
        return col.astype(object).where(col.notna() & np.isfinite(col.astype("float64")), None).tolist()
    if kind == "money":
        return (
            col.round(2).astype(object).where(col.notna() & np.isfinite(col.astype("float64")), None).tolist()
        )
    return col.where(col.notna(), default).tolist() if default is not None else col.tolist()


def _store_scores(run: ModelRun, scores: pd.DataFrame, *, currency: str, computed_at: dt.datetime) -> None:
    """Insert the run's scores in batches, each its own transaction, so 1M customers never hold one
    huge transaction. Rows go in with executemany (SQLite) or COPY (PostgreSQL), built column-wise:
    bulk_create spent most of its time building and compiling model instances (about 10,000
    rows/s on SQLite; this path is several times faster, see the run's "store" duration)."""
    size = int(conf("BATCH_SIZE"))
    frame = scores.reset_index()
    n = len(frame)
    ops = connection.ops
    stamp = computed_at if connection.vendor == "postgresql" else ops.adapt_datetimefield_value(computed_at)
    reasons = frame["churn_reasons"] if "churn_reasons" in frame.columns else pd.Series([None] * n)
    columns = [
        [run.pk] * n,
        frame["customer_id"].astype("int64").tolist(),
        frame["r_score"].astype("int64").tolist(),
        frame["f_score"].astype("int64").tolist(),
        frame["m_score"].astype("int64").tolist(),
        frame["rfm_segment"].astype(str).tolist(),
        frame["frequency"].astype("float64").tolist(),
        frame["recency"].astype("float64").tolist(),
        frame["tenure"].astype("float64").tolist(),
        frame["monetary_value"].astype("float64").tolist(),
        _column(frame, "probability_alive", None, float),
        _column(frame, "expected_purchases_12m", None, float),
        _column(frame, "clv_12m", None, "money"),
        _column(frame, "clv_band", ""),
        [currency] * n,
        _column(frame, "churn_risk", None, float),
        _column(frame, "churn_band", ""),
        [json.dumps(r if isinstance(r, list) else []) for r in reasons],
        _column(frame, "cluster", None, int),
        _column(frame, "cluster_label", ""),
        [stamp] * n,
    ]
    rows = list(zip(*columns, strict=True))
    table = CustomerScore._meta.db_table
    names = ", ".join(SCORE_COLUMNS)
    for begin in range(0, n, size):
        chunk = rows[begin : begin + size]
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                    for row in chunk:
                        copy.write_row(row)
            else:
                marks = ", ".join(["%s"] * len(SCORE_COLUMNS))
                cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", chunk)  # noqa: S608
        _progress(run, 75 + int(24 * min(1.0, (begin + size) / max(n, 1))), "storing scores")


SCORE_CHANGE_BATCH = 1000


def emit_score_changes(run: ModelRun, previous_id: int | None) -> int:
    """`customer.score_changed` for each customer whose RFM segment, churn tier or CLV band differs
    between the previous current run and `run`. One join finds them (set-based, nothing per row of a
    million); nothing is read when nobody listens, and customers new in this run are not "changes"."""
    from ecrm.core import events

    if previous_id is None or not events.has_subscribers("customer.score_changed"):
        return 0
    table = connection.ops.quote_name(CustomerScore._meta.db_table)
    sql = (
        f"SELECT n.customer_id, o.rfm_segment, n.rfm_segment, o.churn_band, n.churn_band, o.clv_band, n.clv_band "  # noqa: S608
        f"FROM {table} n JOIN {table} o ON o.customer_id = n.customer_id AND o.run_id = %s "
        f"WHERE n.run_id = %s AND (n.rfm_segment <> o.rfm_segment OR n.churn_band <> o.churn_band "
        f"OR n.clv_band <> o.clv_band) ORDER BY n.customer_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [previous_id, run.pk])
        rows = cursor.fetchall()
    for begin in range(0, len(rows), SCORE_CHANGE_BATCH):
        with transaction.atomic():  # published when each batch commits
            for cid, old_seg, new_seg, old_churn, new_churn, old_clv, new_clv in rows[
                begin : begin + SCORE_CHANGE_BATCH
            ]:
                changes = {
                    k: [old, new]
                    for k, old, new in (("segment", old_seg, new_seg), ("churn_band", old_churn, new_churn),
                                        ("clv_band", old_clv, new_clv))
                    if old != new
                }  # fmt: skip
                events.emit("customer.score_changed", subject_type="customer", subject_id=cid,
                            data={"changes": changes, "run": run.pk})  # fmt: skip
    return len(rows)


def purge_old_scores(*, kind: str = "customer_models") -> int:
    """Delete score rows of all but the KEEP_SCORED_RUNS latest scored runs (never the current one)."""
    keep = int(conf("KEEP_SCORED_RUNS"))
    scored = list(
        ModelRun.objects.filter(kind=kind, status=RunStatus.SUCCEEDED)
        .order_by("-id")
        .values_list("pk", flat=True)
    )
    current = ModelRun.objects.filter(kind=kind, is_current=True).values_list("pk", flat=True)
    kept = set(scored[:keep]) | set(current)
    # Cube files of every run no longer kept (rejected runs' too): the pivot page reads only the current.
    for result in RunResult.objects.filter(run__kind=kind, name="olap").exclude(run_id__in=kept):
        shutil.rmtree(result.data.get("dir", ""), ignore_errors=True)
    drop = [pk for pk in scored if pk not in kept]
    if not drop:
        return 0
    deleted, _ = CustomerScore.objects.filter(run_id__in=drop).delete()
    return deleted


def run_summary(run: ModelRun) -> dict[str, Any]:
    """The JSON the CLI prints and the API returns."""
    return jsonable({
        "run": run.pk, "status": run.status, "current": run.is_current, "version": run.version,
        "observation_end": run.observation_end, "calibration_end": run.calibration_end,
        "time_unit": run.time_unit, "currency": run.currency, "parameters": run.parameters,
        "holdout_metrics": run.metrics, "durations_seconds": run.durations, "counts": run.counts,
        "steps": run.steps, "error": run.error or None,
    })  # fmt: skip
