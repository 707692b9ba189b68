"""The background queue: retries, the dead-letter list, and durability across worker restarts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.urls import reverse

from ecrm.core.models import FailedJob, WorkerHeartbeat
from ecrm.core.tasks import ecrm_task

ROOT = Path(__file__).resolve().parents[3]
ATTEMPTS: list[int] = []


@ecrm_task(retries=2, retry_delay=0)
def flaky_job(customer_id: int) -> None:
    ATTEMPTS.append(customer_id)
    raise RuntimeError(f"shop API down for {customer_id}")


def test_failing_job_is_retried_then_dead_lettered_and_can_be_retried(
    login, django_capture_on_commit_callbacks
):
    ATTEMPTS.clear()
    flaky_job(42)
    assert ATTEMPTS == [42, 42, 42]  # first attempt + 2 retries
    job = FailedJob.objects.get()
    assert job.task_name.endswith("flaky_job")
    assert job.args == [42]
    assert "shop API down for 42" in job.error

    client = login("admin")
    page = client.get(reverse("core:failed_jobs")).content.decode()
    assert "flaky_job" in page and "shop API down for 42" in page

    ATTEMPTS.clear()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("core:retry_job", args=[job.pk]))
    assert ATTEMPTS == [42, 42, 42]  # re-sent with the same arguments (and failed again)
    job.refresh_from_db()
    assert job.resolved_at is not None
    assert FailedJob.objects.filter(resolved_at__isnull=True).count() == 1


def test_agent_cannot_see_or_retry_failed_jobs(login):
    ATTEMPTS.clear()
    flaky_job(7)
    job = FailedJob.objects.get()
    client = login("agent_li")
    assert client.get(reverse("core:failed_jobs")).status_code == 403
    assert client.post(reverse("core:retry_job", args=[job.pk])).status_code == 403
    job.refresh_from_db()
    assert job.resolved_at is None and ATTEMPTS == [7, 7, 7]


def _env(tmp_path: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.base",
        SQLITE_PATH=str(tmp_path / "db.sqlite3"),
        HUEY_SQLITE_PATH=str(tmp_path / "tasks.sqlite3"),
        ECRM_VAR_DIR=str(tmp_path),
        **extra,
    )
    return env


def _manage(env, *args, timeout=120):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


ENQUEUE = "from ecrm.core.tasks import heartbeat; heartbeat('{name}')"
READ = "from ecrm.core.models import WorkerHeartbeat as W; print(W.objects.filter(name='{name}').exists())"


def _job_survives_restart(env, name):
    assert _manage(env, "migrate", "-v", "0").returncode == 0
    # Enqueued while no worker runs: the job waits in the durable queue.
    out = _manage(env, "shell", "-v", "0", "-c", ENQUEUE.format(name=name))
    assert out.returncode == 0, out.stderr
    assert _manage(env, "shell", "-v", "0", "-c", READ.format(name=name)).stdout.strip() == "False"
    # A worker that is killed without running it, then a fresh worker: the job still runs.
    worker = subprocess.Popen([sys.executable, "manage.py", "run_huey", "--quiet"], cwd=ROOT, env=env)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            if _manage(env, "shell", "-v", "0", "-c", READ.format(name=name)).stdout.strip() == "True":
                break
            time.sleep(0.5)
        else:
            pytest.fail("the queued job never ran")
    finally:
        worker.kill()
        worker.wait()


@pytest.mark.slow
def test_job_enqueued_before_the_worker_starts_runs_on_sqlite(tmp_path):
    _job_survives_restart(_env(tmp_path), "sqlite-durable")


@pytest.mark.slow
def test_job_runs_through_redis_when_redis_url_is_set(tmp_path):
    redis = pytest.importorskip("redis")
    url = "redis://127.0.0.1:6379/15"
    try:
        redis.Redis.from_url(url).flushdb()
    except redis.exceptions.ConnectionError:
        pytest.fail("Redis is expected on 127.0.0.1:6379 (see README)")
    _job_survives_restart(_env(tmp_path, REDIS_URL=url), "redis-durable")


def test_heartbeat_is_reported_by_health_check(client, db):
    from ecrm.core.tasks import heartbeat

    heartbeat("worker")
    data = client.get(reverse("core:healthz")).json()
    assert data["worker"] == "ok"
    assert WorkerHeartbeat.objects.count() == 1
