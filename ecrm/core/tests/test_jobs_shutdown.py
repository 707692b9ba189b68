"""Graceful shutdown of `manage.py serve`: SIGTERM during a job; the job either finishes within the grace
period or is returned to the queue, and in both cases it commits exactly once."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import pytest

from .procs import ROOT, Instance

ENQUEUE = "from ecrm.core.tests.jobapp.tasks import mark; mark({n}, {seconds}, {log!r})"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_and_stop(
    inst: Instance, *, number: int, seconds: float, grace: float
) -> subprocess.CompletedProcess:
    inst.shell(ENQUEUE.format(n=number, seconds=seconds, log=str(inst.log)))
    cmd = [
        sys.executable,
        "manage.py",
        "serve",
        "--no-seed",
        "--port",
        str(_free_port()),
        "--grace",
        str(grace),
    ]
    serve = subprocess.Popen(
        cmd, cwd=ROOT, env=inst.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        inst.wait_for(lambda: number in inst.starts(), timeout=90, what="the job to start")
        serve.send_signal(signal.SIGTERM)
        out, err = serve.communicate(timeout=grace + 40)
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
    return subprocess.CompletedProcess(cmd, serve.returncode, out, err)


def _claim(inst: Instance, number: int) -> tuple[str, int, int]:
    rows = inst.query(
        "SELECT state, attempt, recoveries, args FROM core_jobclaim WHERE task_name LIKE '%jobapp%'"
    )
    matching = [r[:3] for r in rows if str(r[3]).startswith(f"[{number},")]
    assert len(matching) == 1
    return matching[0]


@pytest.mark.slow
def test_sigterm_lets_the_running_job_finish_within_the_grace_period(tmp_path):
    inst = Instance(tmp_path)
    inst.manage("migrate", "-v", "0")
    result = _serve_and_stop(inst, number=1, seconds=3, grace=20)
    assert result.returncode == 0, result.stderr
    assert "Shutting down" in result.stdout and "Returned" not in result.stdout
    assert inst.query("SELECT number FROM jobapp_jobmark") == [(1,)]
    assert _claim(inst, 1) == ("done", 1, 0)
    assert inst.starts() == [1]


@pytest.mark.slow
def test_a_job_longer_than_the_grace_period_is_returned_and_runs_once_on_the_next_start(tmp_path):
    inst = Instance(tmp_path)
    inst.manage("migrate", "-v", "0")
    result = _serve_and_stop(inst, number=2, seconds=6, grace=1)
    assert result.returncode == 0, result.stderr
    assert inst.query("SELECT COUNT(*) FROM jobapp_jobmark") == [(0,)]  # cut short: nothing committed
    assert _claim(inst, 2) == ("requeued", 1, 1)
    assert "Returned 1 unfinished job(s)" in result.stdout or "returned job" in result.stderr

    inst.start_worker()
    try:
        inst.wait_for(lambda: _claim(inst, 2)[0] == "done", timeout=60, what="the returned job to run")
    finally:
        inst.stop_all()
    assert inst.query("SELECT number FROM jobapp_jobmark") == [(2,)]
    assert _claim(inst, 2) == ("done", 2, 1)
    assert inst.starts() == [2, 2]  # begun twice, committed once


def test_serve_refuses_several_web_workers_without_a_shared_cache(settings):
    from django.core.management import CommandError, call_command

    settings.REDIS_URL = ""
    with pytest.raises(CommandError, match="REDIS_URL"):
        call_command("serve", workers=2, no_seed=True)
