"""Recovery figures: the job ledger's cost per job, jobs through a real worker, recovery after SIGKILL,
and an online backup / verified restore of a seeded instance.

    .venv/bin/python bench/recovery.py                  # SQLite, 2,000 seeded customers
    .venv/bin/python bench/recovery.py --customers 5000
    .venv/bin/python bench/recovery.py --pg             # PostgreSQL databases bench_recovery(_restored)

Everything lives under var/bench-recovery/ (wiped on each run).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "var" / "bench-recovery"
PG = "postgres://postgres@127.0.0.1:5432/"

LEDGER = """
import time
from huey import MemoryHuey
from ecrm.core import jobs
from ecrm.core.models import JobClaim
h = MemoryHuey("bench", immediate=False)
@h.task()
def job(n):
    return n
N = {n}
t0 = time.perf_counter()
for i in range(N):
    t = job.s(i)
    jobs.record_enqueued(t, h)
    jobs.run_claimed(job.func, t, h, t.args, t.kwargs, atomic=True)
dt = time.perf_counter() - t0
assert JobClaim.objects.filter(state="done").count() >= N
print(round(dt / N * 1e6))
"""
ENQUEUE = "from ecrm.core.tests.jobapp.tasks import mark\nfor n in range({count}): mark(n, {seconds})"


def _env(pg: bool, db: str = "bench_recovery") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="ecrm.core.tests.worker_settings",
        SQLITE_PATH=str(WORK / "db.sqlite3"),
        HUEY_SQLITE_PATH=str(WORK / "tasks.sqlite3"),
        ECRM_VAR_DIR=str(WORK),
        ECRM_PRIVATE_FILES=str(WORK / "private"),
    )
    if pg:
        env["DATABASE_URL"] = PG + db
    return env


def manage(env, *args) -> str:
    out = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if out.returncode:
        raise SystemExit(f"manage.py {' '.join(args[:2])} failed:\n{out.stderr[-3000:]}")
    return out.stdout


def count(env, pg: bool, sql: str) -> int:
    if pg:
        import psycopg

        with psycopg.connect(env["DATABASE_URL"]) as conn:
            return conn.execute(sql).fetchone()[0]
    conn = sqlite3.connect(WORK / "db.sqlite3", timeout=30)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


def worker(env) -> subprocess.Popen:
    cmd = [sys.executable, "manage.py", "run_huey", "--workers", "2", "--delay", "0.02", "--max-delay", "0.2"]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait(pred, timeout=300) -> float:
    start = time.perf_counter()
    while not pred():
        if time.perf_counter() - start > timeout:
            raise SystemExit("timed out")
        time.sleep(0.02)
    return time.perf_counter() - start


def pg_recreate(name: str) -> None:
    import psycopg

    with psycopg.connect(PG + "postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--pg", action="store_true")
    args = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    if args.pg:
        pg_recreate("bench_recovery")
        pg_recreate("bench_recovery_restored")
    env = _env(args.pg)
    rows: list[tuple[str, str]] = []
    t0 = time.perf_counter()
    manage(env, "migrate", "-v", "0")
    manage(env, "seed", "--customers", str(args.customers))
    print(
        f"set-up: migrate + seed {args.customers} customers in {time.perf_counter() - t0:.0f} s", flush=True
    )

    us = manage(env, "shell", "-v", "0", "-c", LEDGER.format(n=500)).strip()
    rows.append(("ledger cost per job (send + claim + done, one job transaction)", f"{us} µs"))

    # Throughput of short jobs through a real worker (2 threads): plain Huey tasks, then ecrm_task.
    ours = "SELECT COUNT(*) FROM jobapp_jobmark"
    for label, task, offset in (
        ("plain Huey task", "mark_plain", 0),
        ("ecrm_task with the ledger", "mark", 1),
    ):
        code = (
            ENQUEUE.replace("mark", task)
            .format(count=args.jobs, seconds=0)
            .replace("(n,", f"(n + {offset * args.jobs},")
        )
        manage(env, "shell", "-v", "0", "-c", code)
        proc = worker(env)
        took = wait(lambda o=offset: count(env, args.pg, ours) >= (o + 1) * args.jobs)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        rows.append(
            (f"{args.jobs} short jobs, one worker (2 threads): {label}", f"{args.jobs / took:.0f} jobs/s")
        )

    # SIGKILL half-way through jobs of 50 ms; a new worker; time to every job done once.
    count(env, args.pg, "DELETE FROM jobapp_jobmark RETURNING 0") if args.pg else None
    if not args.pg:
        conn = sqlite3.connect(WORK / "db.sqlite3")
        conn.execute("DELETE FROM jobapp_jobmark")
        conn.commit()
        conn.close()
    n = 100
    manage(env, "shell", "-v", "0", "-c", ENQUEUE.format(count=n, seconds=0.05))
    proc = worker(env)
    wait(lambda: count(env, args.pg, ours) >= n // 2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    at_kill = count(env, args.pg, ours)
    restart = time.perf_counter()
    proc = worker(env)
    wait(lambda: count(env, args.pg, ours) >= n)
    rest = time.perf_counter() - restart
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    recovered = count(
        env, args.pg, "SELECT COUNT(*) FROM core_jobclaim WHERE recoveries > 0 AND task_name LIKE '%jobapp%'"
    )
    final = count(env, args.pg, ours)
    rows.append(
        (
            f"SIGKILL at {at_kill}/{n} jobs, restart",
            f"all {final} done once in {rest:.1f} s, {recovered} recovered",
        )
    )

    # Online backup and verified restore.
    t = time.perf_counter()
    out = manage(env, "backup", "--output", str(WORK / "backup.tar.gz"))
    backup_s = time.perf_counter() - t
    size = (WORK / "backup.tar.gz").stat().st_size
    with __import__("tarfile").open(WORK / "backup.tar.gz") as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
    key_rows = sum(manifest["row_counts"].values())
    rows.append(
        (
            f"backup ({manifest['db_vendor']}, {key_rows} rows in key tables)",
            f"{backup_s:.1f} s, {size / 1e6:.1f} MB",
        )
    )
    restore_args = ["restore", str(WORK / "backup.tar.gz"), "--target", str(WORK / "restored")]
    if args.pg:
        restore_args += ["--database-url", PG + "bench_recovery_restored"]
    t = time.perf_counter()
    out = manage(env, *restore_args)
    rows.append(
        ("restore + verify (checksums, integrity, migrations, counts)", f"{time.perf_counter() - t:.1f} s")
    )
    assert "Verified." in out

    width = max(len(r[0]) for r in rows)
    print()
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")


if __name__ == "__main__":
    main()
