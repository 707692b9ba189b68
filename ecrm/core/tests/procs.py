"""Real processes for the recovery tests: a temporary instance (SQLite file or a PostgreSQL database of
its own), `manage.py` in a subprocess, and a Huey worker that can be killed."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PG_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"


def pg_url(name: str) -> str:
    return f"postgres://postgres@127.0.0.1:5432/{name}"


def pg_recreate(name: str) -> str:
    """An empty PostgreSQL database named `name` (dropped first if it exists); skips without a server."""
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        pytest.skip("no PostgreSQL server on 127.0.0.1:5432")
    with admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    return pg_url(name)


class Instance:
    """One eCRM instance in a temporary directory, driven through manage.py like an operator would."""

    def __init__(
        self, tmp: Path, *, database_url: str = "", settings: str = "ecrm.core.tests.worker_settings"
    ):
        self.dir = tmp
        self.database_url = database_url
        self.log = tmp / "starts.log"  # each job start appends its number here
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        env.update(
            DJANGO_SETTINGS_MODULE=settings,
            SQLITE_PATH=str(tmp / "db.sqlite3"),
            HUEY_SQLITE_PATH=str(tmp / "tasks.sqlite3"),
            ECRM_VAR_DIR=str(tmp),
            ECRM_PRIVATE_FILES=str(tmp / "private"),
            PYTHONUNBUFFERED="1",
        )
        if database_url:
            env["DATABASE_URL"] = database_url
        self.env = env
        self.workers: list[subprocess.Popen] = []

    def manage(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        out = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip
        if check and out.returncode != 0:
            pytest.fail(f"manage.py {' '.join(args)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
        return out

    def shell(self, code: str, **kw) -> str:
        return self.manage("shell", "-v", "0", "-c", code, **kw).stdout.strip()

    def start_worker(self, *extra: str) -> subprocess.Popen:
        cmd = [
            sys.executable,
            "manage.py",
            "run_huey",
            "--workers",
            "2",
            "--delay",
            "0.05",
            "--max-delay",
            "0.5",
        ]
        proc = subprocess.Popen(
            [*cmd, *extra], cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self.workers.append(proc)
        return proc

    def query(self, sql: str) -> list[tuple]:
        """Read the instance's database directly (not through Django), as an outside observer."""
        if self.database_url:
            import psycopg

            with psycopg.connect(self.database_url) as conn:
                return list(conn.execute(sql).fetchall())
        conn = sqlite3.connect(self.dir / "db.sqlite3", timeout=30)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()

    def starts(self) -> list[int]:
        return [int(x) for x in self.log.read_text().split()] if self.log.exists() else []

    def wait_for(self, predicate, *, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        pytest.fail(f"timed out waiting for {what}")

    def stop_all(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait()
