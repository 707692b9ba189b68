"""Helpers shared by the benchmarks: start a real server, a keep-alive HTTP session with cookies,
and percentiles."""

from __future__ import annotations

import http.client
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    env: dict[str, str], port: int, *, workers: int = 1, log: Path | None = None
) -> subprocess.Popen:
    """uvicorn on 127.0.0.1:port with DEBUG off; waits until /healthz answers (or raises)."""
    full_env = {**os.environ, "DEBUG": "0", "DJANGO_SETTINGS_MODULE": "config.settings.base", **env}
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--lifespan",
            "off",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=full_env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}; see {log}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            return proc
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise RuntimeError("server did not start within 60 s")


def start_worker(env: dict[str, str], log: Path | None = None) -> subprocess.Popen:
    """The Huey worker as `make run` starts it (`manage.py run_huey`), on the same settings as the server."""
    full_env = {**os.environ, "DEBUG": "0", "DJANGO_SETTINGS_MODULE": "config.settings.base", **env}
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "manage.py", "run_huey", "--quiet"], cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT
    )  # fmt: skip


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    ms: float

    @property
    def server_ms(self) -> float | None:
        """Total from a `Server-Timing` header (`app;dur=12.3`), when the app sends one."""
        value = self.headers.get("server-timing")
        if not value:
            return None
        durations = [float(m) for m in re.findall(r"dur=([0-9.]+)", value)]
        return max(durations) if durations else None


@dataclass
class Session:
    """One keep-alive connection with a cookie jar: measures what a browser on this machine waits."""

    host: str
    port: int
    cookies: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> Response:
        hdrs = {"Host": f"{self.host}:{self.port}", **(headers or {})}
        if self.cookies:
            hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        started = time.perf_counter()
        try:
            self.conn.request(method, path, body=body, headers=hdrs)
            resp = self.conn.getresponse()
        except (http.client.HTTPException, OSError):
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
            self.conn.request(method, path, body=body, headers=hdrs)
            resp = self.conn.getresponse()
        data = resp.read()
        ms = (time.perf_counter() - started) * 1000
        for key, value in resp.getheaders():
            if key.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data, ms)

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def login(self, username: str, password: str, login_path: str = "/login/") -> None:
        self.get(login_path)
        token = self.cookies.get("csrftoken", "")
        form = urllib.parse.urlencode(
            {"username": username, "password": password, "csrfmiddlewaretoken": token}
        )
        resp = self.request(
            "POST",
            login_path,
            form.encode(),
            {
                "Content-Type": "application/x-www-form-urlencoded",
                "Referer": f"http://{self.host}:{self.port}{login_path}",
            },
        )
        if resp.status != 302 or "sessionid" not in self.cookies:
            raise RuntimeError(f"login as {username} failed: HTTP {resp.status}")


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(values: list[float]) -> dict[str, float]:
    return {"p50": statistics.median(values), "p95": percentile(values, 95), "max": max(values)}
