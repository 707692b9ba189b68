"""/healthz: per-check status, 200 when the critical checks pass (even if the worker needs attention),
503 when the database or the queue is down; counts and ages only, nothing secret."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from django.utils import timezone

from ecrm.core.models import FailedJob, JobClaim, JobState, WorkerHeartbeat
from ecrm.core.tasks import HUEY

from .procs import Instance


def _get(client):
    resp = client.get(reverse("core:healthz"))
    return resp.status_code, resp.json()


def test_all_checks_ok_with_a_live_worker(client, db):
    WorkerHeartbeat.objects.create(name="w:box:123:abcd1234", beat_at=timezone.now())
    status, data = _get(client)
    assert status == 200 and data["status"] == "ok"
    checks = data["checks"]
    assert {name: c["status"] for name, c in checks.items()} == {
        "database": "ok", "queue": "ok", "worker": "ok", "jobs": "ok",
    }  # fmt: skip
    assert checks["database"]["latency_ms"] >= 0
    assert checks["queue"]["pending"] == 0 and checks["queue"]["oldest_pending_age_s"] is None
    assert checks["worker"]["live_processes"] == 1
    assert checks["jobs"] == {
        "status": "ok",
        "running": 0,
        "running_too_long": 0,
        "waiting": 0,
        "dead_letters": 0,
    }
    body = json.dumps(data)
    assert "box" not in body and "123" not in body  # no host names or pids of workers


def test_no_worker_stuck_jobs_and_dead_letters_degrade_but_keep_200(client, db, settings):
    settings.ECRM_JOB_LONG_RUNNING = 600
    long_ago = timezone.now() - timezone.timedelta(minutes=30)
    WorkerHeartbeat.objects.create(name="w:box:1:a", beat_at=long_ago)  # a worker that went silent
    JobClaim.objects.create(
        task_id="t1", task_name="x.y", message=b"m", state=JobState.RUNNING, worker="box:1:a", host="box", pid=1,
        queued_at=long_ago, started_at=long_ago,
    )  # fmt: skip
    FailedJob.objects.create(task_id="f1", task_name="x.z", error="boom")
    status, data = _get(client)
    assert status == 200 and data["status"] == "degraded"
    assert data["checks"]["worker"] == {
        "status": "down",
        "live_processes": 0,
        "last_job_heartbeat_age_s": None,
    }
    assert data["checks"]["jobs"]["status"] == "warn"
    assert data["checks"]["jobs"]["running_too_long"] == 1 and data["checks"]["jobs"]["dead_letters"] == 1
    assert "boom" not in json.dumps(data)  # error texts stay in the console


def test_jobs_waiting_with_nobody_working_them_is_flagged(client, db):
    WorkerHeartbeat.objects.create(name="worker", beat_at=timezone.now())
    HUEY.storage.enqueue(b"a waiting message")
    JobClaim.objects.create(
        task_id="w1",
        task_name="x.y",
        message=b"m",
        queued_at=timezone.now() - timezone.timedelta(seconds=400),
    )
    try:
        status, data = _get(client)
    finally:
        HUEY.storage.flush_queue()
    queue = data["checks"]["queue"]
    assert status == 200 and queue["pending"] == 1 and queue["status"] == "warn"
    assert queue["seconds_since_last_job_started"] is None and data["queue_pending"] == 1
    assert 399 <= queue["oldest_pending_age_s"] <= 410


HEALTH = (
    "from django.test import Client; r = Client().get('/healthz'); "
    "print(r.status_code); print(r.content.decode())"
)


@pytest.mark.slow
def test_database_or_queue_down_answers_503(tmp_path):
    # Real failures, not mocks: a database file that cannot be opened, a Redis nobody listens on.
    inst = Instance(tmp_path, settings="config.settings.base")
    inst.env["SQLITE_PATH"] = str(tmp_path / "no-such-dir" / "db.sqlite3")
    code, body = inst.shell(HEALTH).split("\n", 1)
    data = json.loads(body)
    assert code == "503" and data["status"] == "down"
    assert data["checks"]["database"] == {"status": "down", "error": "OperationalError"}
    assert data["checks"]["worker"] == {"status": "unknown"} and "no-such-dir" not in body

    inst = Instance(tmp_path, settings="config.settings.base")
    inst.manage("migrate", "-v", "0")
    inst.env["REDIS_URL"] = "redis://127.0.0.1:1/0"
    code, body = inst.shell(HEALTH).split("\n", 1)
    data = json.loads(body)
    assert code == "503" and data["checks"]["queue"]["status"] == "down"
    assert data["checks"]["database"]["status"] == "ok"
