"""Exactly-once jobs: a real worker killed with SIGKILL in the middle of jobs, a fresh worker, every job's
row exactly once; and two workers racing to recover the same job."""

from __future__ import annotations

import json
import signal
import threading

import pytest
from django.utils import timezone
from huey import MemoryHuey

from ecrm.core import jobs
from ecrm.core.models import JobClaim, JobState

from .procs import Instance, pg_recreate

JOBS = 50
OURS = "task_name LIKE '%jobapp%'"  # other apps' periodic work may send jobs of their own meanwhile
ENQUEUE = (
    "from ecrm.core.tests.jobapp.tasks import mark\nfor n in range({count}): mark(n, {seconds}, {log!r})"
)


def _kill_mid_way_and_recover(inst: Instance) -> None:
    inst.manage("migrate", "-v", "0")
    inst.shell(ENQUEUE.format(count=JOBS, seconds=0.1, log=str(inst.log)))
    committed = lambda: inst.query("SELECT COUNT(*) FROM jobapp_jobmark")[0][0]  # noqa: E731

    first = inst.start_worker()
    try:
        # Kill when a third of the jobs have committed and at least one more has started but not committed.
        inst.wait_for(
            lambda: committed() >= JOBS // 3 and len(inst.starts()) > committed(),
            timeout=60,
            what="jobs to run",
        )
        first.send_signal(signal.SIGKILL)
        first.wait()
        done_before = committed()
        orphans = inst.query(
            f"SELECT task_id FROM core_jobclaim WHERE state = 'running' AND pid = {int(first.pid)} AND {OURS}"  # noqa: S608
        )
        assert orphans, "the worker was killed between jobs; nothing was in flight"
        assert done_before < JOBS

        inst.start_worker()
        inst.wait_for(lambda: committed() == JOBS, timeout=60, what="all jobs to finish after the restart")
        inst.wait_for(
            lambda: (
                inst.query(f"SELECT COUNT(*) FROM core_jobclaim WHERE state = 'done' AND {OURS}")[0][0]  # noqa: S608
                == JOBS
            ),
            timeout=20,
            what="the ledger to show every job done",
        )
    finally:
        inst.stop_all()

    numbers = [row[0] for row in inst.query("SELECT number FROM jobapp_jobmark ORDER BY number")]
    assert numbers == list(range(JOBS))  # every job's row, exactly once (number is also unique)
    claims = inst.query(f"SELECT task_id, state, attempt, recoveries FROM core_jobclaim WHERE {OURS}")  # noqa: S608
    assert len(claims) == JOBS and {c[1] for c in claims} == {"done"}
    in_flight = {o[0] for o in orphans}
    # (recoveries may be 2: a requeued job whose worker is slow to claim it, waiting for SQLite's write
    # lock, looks lost after ECRM_JOB_ORPHAN_AFTER and is sent again; the copy is skipped at its claim.)
    recovered = {c[0] for c in claims if c[3] >= 1}
    # Recovered: the jobs in flight at the kill, plus any the dead worker had taken off the queue but
    # not yet claimed (the second worker thread, waiting for SQLite's write lock, often holds one).
    assert in_flight <= recovered
    assert all(c[2] == 2 for c in claims if c[0] in in_flight)  # started twice, committed once
    assert all(c[2] == 1 for c in claims if c[0] not in in_flight)
    assert all(c[3] == 0 for c in claims if c[0] not in recovered)
    # The killed bodies did start (the outside log shows a second start) but committed only once.
    # (A claim can be in flight with its body not begun: on SQLite the second thread's job waits for
    # the write lock after its claim commits.)
    starts = inst.starts()
    assert sorted(set(starts)) == list(range(JOBS))
    twice = {n for n in starts if starts.count(n) == 2}
    assert 1 <= len(twice) == len(starts) - JOBS <= len(in_flight)
    numbers_in_flight = {
        json.loads(a)[0] if isinstance(a, str) else a[0]
        for (a,) in inst.query(f"SELECT args FROM core_jobclaim WHERE {OURS} AND attempt = 2")  # noqa: S608
    }
    assert twice <= numbers_in_flight
    assert inst.query("SELECT COUNT(*) FROM core_failedjob WHERE task_name LIKE '%jobapp%'")[0][0] == 0


@pytest.mark.slow
def test_killed_worker_jobs_run_exactly_once_on_sqlite(tmp_path):
    _kill_mid_way_and_recover(Instance(tmp_path))


@pytest.mark.slow
def test_killed_worker_jobs_run_exactly_once_on_postgresql(tmp_path):
    _kill_mid_way_and_recover(Instance(tmp_path, database_url=pg_recreate("h_d")))


def _running_claim(**kw) -> JobClaim:
    defaults = {
        "task_id": "t-1", "task_name": "app.tasks.job", "message": b"payload", "worker": "elsewhere:1:abc",
        "host": "elsewhere", "pid": 1, "state": JobState.RUNNING,
        "started_at": timezone.now() - timezone.timedelta(minutes=10),
    }  # fmt: skip
    kw.setdefault("queued_at", kw.get("started_at", defaults["started_at"]))
    return JobClaim.objects.create(**{**defaults, **kw})


def test_two_workers_recovering_the_same_job_requeue_it_once(transactional_db):
    claim = _running_claim()
    huey = MemoryHuey("race", immediate=False)
    barrier = threading.Barrier(2)
    results: list[bool] = []

    def recover() -> None:
        from django.db import connection

        try:
            barrier.wait()
            results.append(jobs.requeue(JobClaim.objects.get(pk=claim.pk), huey))
        finally:
            connection.close()

    threads = [threading.Thread(target=recover) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, True]
    assert huey.pending_count() == 1
    claim.refresh_from_db()
    assert claim.state == JobState.REQUEUED and claim.recoveries == 1


def test_recovery_leaves_live_workers_jobs_alone_and_takes_dead_ones(db):
    huey = MemoryHuey("recover", immediate=False)
    now = timezone.now()
    # Another host that beat recently: alive. Another host silent for 10 minutes: dead.
    jobs.WorkerHeartbeat.objects.create(name="w:alive:1:aaa", beat_at=now)
    jobs.WorkerHeartbeat.objects.create(name="w:silent:1:bbb", beat_at=now - timezone.timedelta(minutes=10))
    _running_claim(task_id="alive", worker="alive:1:aaa", host="alive")
    _running_claim(task_id="silent", worker="silent:1:bbb", host="silent")
    # This host: a pid that no longer exists, and this very process under another boot id (a reused pid).
    _running_claim(
        task_id="gone", worker=f"{jobs.HOST}:999999:ccc", host=jobs.HOST, pid=999999, started_at=now
    )
    _running_claim(
        task_id="reused", worker=f"{jobs.HOST}:x:ddd", host=jobs.HOST, pid=jobs.os.getpid(), started_at=now
    )
    _running_claim(
        task_id="mine", worker=jobs.worker_id(), host=jobs.HOST, pid=jobs.os.getpid(), started_at=now
    )

    assert sorted(jobs.recover_orphaned_jobs(huey)) == ["gone", "reused", "silent"]
    assert huey.pending_count() == 3
    assert jobs.recover_orphaned_jobs(huey) == []  # already requeued: never twice
    assert huey.pending_count() == 3
    states = dict(JobClaim.objects.values_list("task_id", "state"))
    assert states == {"alive": "running", "mine": "running", "silent": "requeued", "gone": "requeued",
                      "reused": "requeued"}  # fmt: skip


def test_done_jobs_are_pruned_after_the_keep_period(db, settings):
    settings.ECRM_JOB_LEDGER_KEEP_DAYS = 7
    old = timezone.now() - timezone.timedelta(days=8)
    _running_claim(task_id="old-done", state=JobState.DONE, started_at=old)
    _running_claim(task_id="old-running", started_at=old)
    _running_claim(task_id="old-failed", state=JobState.FAILED, started_at=old)
    _running_claim(task_id="old-retrying", state=JobState.RETRYING, started_at=old)
    _running_claim(task_id="new-done", state=JobState.DONE, started_at=timezone.now())
    assert jobs.prune_ledger() == 2
    assert sorted(JobClaim.objects.values_list("task_id", flat=True)) == [
        "new-done",
        "old-retrying",
        "old-running",
    ]


@pytest.mark.slow
def test_a_failing_job_in_a_real_worker_rolls_back_each_attempt_and_is_dead_lettered(tmp_path):
    inst = Instance(tmp_path)
    inst.manage("migrate", "-v", "0")
    inst.shell("from ecrm.core.tests.jobapp.tasks import always_fails; always_fails(7)")
    inst.start_worker()
    try:
        inst.wait_for(
            lambda: inst.query("SELECT COUNT(*) FROM core_failedjob")[0][0] == 1,
            timeout=60,
            what="a dead letter",
        )
    finally:
        inst.stop_all()
    name, args, error = inst.query("SELECT task_name, args, error FROM core_failedjob")[0]
    assert name.endswith("always_fails") and json.loads(args) == [7] and "warehouse API down for 7" in error
    assert inst.query(f"SELECT state, attempt FROM core_jobclaim WHERE {OURS}") == [("failed", 2)]  # noqa: S608
    assert inst.query("SELECT COUNT(*) FROM jobapp_jobmark") == [(0,)]  # both attempts rolled back
