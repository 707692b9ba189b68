"""The health check behind `/healthz`: database, queue, worker liveness and the job ledger.

Cheap (a handful of indexed queries) and unauthenticated, for load balancers and monitoring; it reports
states, counts and ages only, never hosts, paths, settings or error texts. The HTTP status is 503 only
when a *critical* check fails (the database, the queue: this instance cannot serve); a dead worker or
stuck jobs make the report "degraded" but keep 200, so a load balancer does not take healthy web
servers out of rotation because the background worker needs attention.
"""

from __future__ import annotations

import time
from typing import Any

from django.db import connection
from django.utils import timezone

OK, WARN, DOWN = "ok", "warn", "down"
CRITICAL = ("database", "queue")
WORKER_STALE_AFTER = 180  # the periodic heartbeat job runs every minute
QUEUE_STALL_AFTER = 300  # jobs waiting, and none started for this long: the queue is not being worked


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)


def check_database() -> dict[str, Any]:
    start = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return {"status": DOWN, "error": type(exc).__name__}
    return {"status": OK, "latency_ms": _ms(start)}


def check_queue(huey, *, db_ok: bool, now) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        pending = huey.pending_count()
        scheduled = huey.scheduled_count()
    except Exception as exc:  # noqa: BLE001
        return {"status": DOWN, "error": type(exc).__name__}
    result: dict[str, Any] = {
        "status": OK,
        "latency_ms": _ms(start),
        "pending": pending,
        "scheduled": scheduled,
    }
    if db_ok:
        from .models import JobClaim, JobState

        # Huey's messages carry no enqueue time; the ledger's do (ecrm_task jobs, which is nearly all).
        oldest = JobClaim.objects.filter(state__in=(JobState.QUEUED, JobState.REQUEUED)).order_by("queued_at")
        oldest_at = oldest.values_list("queued_at", flat=True).first()
        result["oldest_pending_age_s"] = round((now - oldest_at).total_seconds()) if oldest_at else None
    if pending and db_ok:
        # The ledger's latest start tells whether anyone is working the queue.
        last = JobClaim.objects.filter(started_at__isnull=False).order_by("-started_at").values_list(
            "started_at", flat=True
        ).first()  # fmt: skip
        idle = (now - last).total_seconds() if last else None
        result["seconds_since_last_job_started"] = round(idle) if idle is not None else None
        if idle is None or idle > QUEUE_STALL_AFTER:
            result["status"] = WARN
            result["reason"] = "jobs are waiting and none has started recently"
    return result


def check_worker(*, now) -> dict[str, Any]:
    from .jobs import BEAT_PREFIX, conf
    from .models import WorkerHeartbeat

    beats = dict(WorkerHeartbeat.objects.values_list("name", "beat_at"))
    job_beat = beats.get("worker")
    alive_after = now - timezone.timedelta(seconds=conf("ECRM_JOB_ORPHAN_AFTER"))
    processes = sum(1 for name, at in beats.items() if name.startswith(BEAT_PREFIX) and at >= alive_after)
    job_age = (now - job_beat).total_seconds() if job_beat else None
    ok = processes > 0 or (job_age is not None and job_age < WORKER_STALE_AFTER)
    return {
        "status": OK if ok else DOWN,
        "live_processes": processes,
        "last_job_heartbeat_age_s": round(job_age) if job_age is not None else None,
    }


def check_jobs(*, now) -> dict[str, Any]:
    from .jobs import ledger_summary

    summary = ledger_summary(now=now)
    status = WARN if summary["running_too_long"] or summary["dead_letters"] else OK
    return {"status": status, **summary}


def run_checks(huey) -> tuple[dict[str, Any], int]:
    """The report and its HTTP status."""
    now = timezone.now()
    checks: dict[str, dict[str, Any]] = {"database": check_database()}
    db_ok = checks["database"]["status"] == OK
    checks["queue"] = check_queue(huey, db_ok=db_ok, now=now)
    if db_ok:
        checks["worker"] = check_worker(now=now)
        checks["jobs"] = check_jobs(now=now)
    else:
        checks["worker"] = checks["jobs"] = {"status": "unknown"}
    critical_down = any(checks[name]["status"] == DOWN for name in CRITICAL)
    all_ok = all(check["status"] == OK for check in checks.values())
    status = DOWN if critical_down else (OK if all_ok else "degraded")
    worker = checks["worker"]
    report = {
        "status": status,
        "checks": checks,
        # The flat keys earlier versions reported, kept for existing monitors.
        "database": "ok" if db_ok else "down",
        "queue": "ok" if checks["queue"]["status"] != DOWN else "down",
        "queue_pending": checks["queue"].get("pending"),
        "worker": "ok"
        if worker["status"] == OK
        else ("unknown" if worker["status"] == "unknown" else "down"),
    }
    return report, 503 if critical_down else 200
