"""Events per second through the HTTP batch API, next to a raw SQLite insert of the same rows.

    .venv/bin/python bench/ingest.py                       # starts its own server on a fresh SQLite file
    .venv/bin/python bench/ingest.py --workers 2           # uvicorn with two worker processes
    .venv/bin/python bench/ingest.py --url http://127.0.0.1:8000 --key ecrm_…   # a running server

Without --url it migrates a fresh database under var/bench/, seeds customers whose identities half of
the events carry (so identity resolution does real work), creates a write key with
`manage.py create_api_key`, and starts uvicorn (config.asgi:application). Several client processes
then post pre-generated 1,000-event batches over keep-alive connections for a bounded time and
count. Finally the same rows go into an identical table with a plain `executemany` on the same
machine, and the ratio shows what the web layer (HTTP, JSON, validation, identity resolution) costs.
Only loopback addresses are contacted.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing as mp
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import orjson

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable
BENCH_DIR = ROOT / "var" / "bench"
EVENT_TYPES = ["page", "page", "page", "product_view", "product_view", "add_to_cart", "checkout"]


def log(msg: str) -> None:
    print(msg, flush=True)


# --- Server set-up


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.base",
        SQLITE_PATH=str(BENCH_DIR / "ingest.sqlite3"),
        HUEY_SQLITE_PATH=str(BENCH_DIR / "tasks.sqlite3"),
        ECRM_VAR_DIR=str(BENCH_DIR),
        DEBUG="false",
        LOG_LEVEL="WARNING",
    )
    env.pop("DATABASE_URL", None)
    return env


def manage(*args: str, env: dict[str, str]) -> str:
    out = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return out.stdout


SEED = """
from ecrm.customers.models import Customer, Identity
n = {n}
Customer.objects.bulk_create([Customer(display_name=f"Bench {{i}}", email=f"c{{i}}@bench.example") for i in range(n)], batch_size=2000)
ids = list(Customer.objects.order_by("id").values_list("id", flat=True))
rows = []
for i, pk in enumerate(ids):
    rows.append(Identity(customer_id=pk, kind="email", value=f"c{{i}}@bench.example"))
    rows.append(Identity(customer_id=pk, kind="external", value=f"u{{i}}"))
Identity.objects.bulk_create(rows, batch_size=2000)
print(len(ids))
"""


def start_server(port: int, workers: int, known: int) -> tuple[subprocess.Popen, str]:
    shutil.rmtree(BENCH_DIR, ignore_errors=True)
    BENCH_DIR.mkdir(parents=True)
    env = server_env()
    log(f"migrating a fresh database at {BENCH_DIR / 'ingest.sqlite3'} …")
    manage("migrate", "--no-input", env=env)
    seeded = manage("shell", "-c", SEED.format(n=known), env=env).strip()
    log(f"seeded {seeded} known customers (email + shop account id each)")
    key = manage("create_api_key", "--name", "bench", "--scope", "write", env=env).strip()
    cmd = [
        str(ROOT / ".venv" / "bin" / "uvicorn"),
        "config.asgi:application",
        "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers),
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/v1/whoami", headers={"Authorization": f"Bearer {key}"})
            if conn.getresponse().status == 200:
                return proc, key
        except OSError:
            time.sleep(0.2)
    stop_server(proc)
    raise SystemExit("the server did not come up")


def stop_server(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


# --- Payloads


def make_batches(client: int, count: int, size: int, known: int, run: str) -> list[list[dict]]:
    """About half the events carry a known identity (email or shop account id); the rest come from
    anonymous visitors, some returning within the run."""
    rng = random.Random(client)
    visitors = [f"{run}-v{client}-{i}" for i in range(max(1, size // 4))]
    batches = []
    for b in range(count):
        items = []
        for i in range(size):
            item = {
                "event_id": f"{run}-{client}-{b}-{i}",
                "type": rng.choice(EVENT_TYPES),
                "occurred_at": f"2025-06-01T10:{i % 60:02d}:{b % 60:02d}+08:00",
                "properties": {"sku": f"SKU-{rng.randrange(500)}", "price": "129.00"},
                "context": {
                    "page": {"url": f"https://shop.example/p/{rng.randrange(500)}"},
                    "locale": "zh-CN",
                },
            }
            roll = rng.random()
            if roll < 0.25:
                item["email"] = f"c{rng.randrange(known)}@bench.example"
            elif roll < 0.5:
                item["user_id"] = f"u{rng.randrange(known)}"
                item["anonymous_id"] = rng.choice(visitors)
            else:
                item["anonymous_id"] = rng.choice(visitors)
            items.append(item)
        batches.append(items)
    return batches


def client_main(args: tuple) -> dict:
    client, url, key, batches, deadline = args
    bodies = [orjson.dumps({"batch": b}) for b in batches]
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=120)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    sent = accepted = failed = 0
    first_error = ""
    latencies = []
    cpu_start = time.process_time()
    for body in bodies:
        if time.time() > deadline:
            break
        start = time.perf_counter()
        conn.request("POST", "/api/v1/batch", body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        latencies.append(time.perf_counter() - start)
        if resp.status != 200:
            failed += 1
            if not first_error:
                first_error = f"HTTP {resp.status}: {data[:300].decode(errors='replace')}"
            continue
        summary = orjson.loads(data)
        sent += summary["received"]
        accepted += summary["accepted"]
    conn.close()
    return {
        "client": client,
        "cpu": time.process_time() - cpu_start,
        "sent": sent,
        "accepted": accepted,
        "failed_requests": failed,
        "first_error": first_error,
        "latencies": latencies,
    }


def process_tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and its descendants (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry)] = fields
        children.setdefault(int(fields[1]), []).append(int(entry))
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        if p in stats:
            total += (int(stats[p][11]) + int(stats[p][12])) / tick
        todo.extend(children.get(p, []))
    return total


def run_http(
    url: str,
    key: str,
    clients: int,
    batches: int,
    size: int,
    duration: float,
    known: int,
    server_pid: int | None,
) -> dict:
    run = uuid.uuid4().hex[:8]
    log(f"generating {clients} × {batches} batches of {size} events …")
    payloads = [make_batches(c, batches, size, known, run) for c in range(clients)]
    # Warm-up: one small batch so imports and the first connection are not timed.
    client_main((-1, url, key, [make_batches(99, 1, 10, known, run + "w")[0]], time.time() + 30))
    with mp.Pool(clients) as pool:
        server_cpu = process_tree_cpu(server_pid) if server_pid else None
        start = time.perf_counter()
        deadline = time.time() + duration
        results = pool.map(client_main, [(c, url, key, payloads[c], deadline) for c in range(clients)])
        elapsed = time.perf_counter() - start
        if server_pid:
            server_cpu = process_tree_cpu(server_pid) - server_cpu
    accepted = sum(r["accepted"] for r in results)
    latencies = sorted(x for r in results for x in r["latencies"])
    return {
        "accepted": accepted,
        "sent": sum(r["sent"] for r in results),
        "failed_requests": sum(r["failed_requests"] for r in results),
        "first_error": next((r["first_error"] for r in results if r["first_error"]), ""),
        "elapsed": elapsed,
        "server_cpu": server_cpu,
        "client_cpu": sum(r["cpu"] for r in results),
        "rate": accepted / elapsed if elapsed else 0.0,
        "p50": latencies[len(latencies) // 2] if latencies else 0.0,
        "p95": latencies[int(len(latencies) * 0.95) - 1] if latencies else 0.0,
        "rows": [item for c in payloads for b in c for item in b][: max(accepted, 1)],
    }


# --- Raw SQLite baseline


def raw_sqlite_rate(rows: list[dict], size: int) -> float:
    """The same rows, pre-serialised, into an identical table with executemany, 1,000 per transaction."""
    path = BENCH_DIR / "raw.sqlite3"
    path.unlink(missing_ok=True)
    ddl = None
    source = BENCH_DIR / "ingest.sqlite3"
    if source.exists():
        with sqlite3.connect(source) as src:
            ddl = [r[0] for r in src.execute(
                "SELECT sql FROM sqlite_master WHERE tbl_name = 'ingest_event' AND sql IS NOT NULL"
            )]  # fmt: skip
    if not ddl:  # --url mode: the table as the migration creates it
        ddl = [
            'CREATE TABLE "ingest_event" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "event_id" varchar(64) '
            'NOT NULL UNIQUE, "anonymous_id" varchar(64) NOT NULL, "type" varchar(32) NOT NULL, "name" varchar(128) '
            'NOT NULL, "properties" text NOT NULL CHECK ((JSON_VALID("properties") OR "properties" IS NULL)), '
            '"context" text NOT NULL CHECK ((JSON_VALID("context") OR "context" IS NULL)), "occurred_at" datetime '
            'NOT NULL, "received_at" datetime NOT NULL, "source" varchar(16) NOT NULL, "customer_id" bigint NULL)',
            'CREATE INDEX "ingest_event_anonymous_id" ON "ingest_event" ("anonymous_id")',
            'CREATE INDEX "event_customer_time_idx" ON "ingest_event" ("customer_id", "occurred_at" DESC)',
        ]
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=OFF;")
    for statement in ddl:
        conn.execute(statement)
    now = "2025-06-01 02:00:00.000000"
    tuples = [
        (
            r["event_id"],
            None,
            r.get("anonymous_id", ""),
            r["type"],
            "",
            orjson.dumps(r["properties"]).decode(),
            orjson.dumps(r["context"]).decode(),
            "2025-06-01 02:00:00",
            now,
            "api",
        )
        for r in rows
    ]
    sql = (
        'INSERT INTO "ingest_event" ("event_id", "customer_id", "anonymous_id", "type", "name", "properties", '
        '"context", "occurred_at", "received_at", "source") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'
    )
    start = time.perf_counter()
    for i in range(0, len(tuples), size):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, tuples[i : i + size])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return len(tuples) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="target a running server instead of starting one")
    parser.add_argument("--key", help="write API key (with --url)")
    parser.add_argument("--port", type=int, default=8191)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument("--batches", type=int, default=40, help="batches per client (upper bound)")
    parser.add_argument("--size", type=int, default=1000, help="events per batch")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds (upper bound)")
    parser.add_argument("--known", type=int, default=20000, help="known customers to seed")
    args = parser.parse_args()

    proc = None
    if args.url:
        if not args.key:
            parser.error("--url needs --key")
        url, key = args.url.rstrip("/"), args.key
        BENCH_DIR.mkdir(parents=True, exist_ok=True)
    else:
        proc, key = start_server(args.port, args.workers, args.known)
        url = f"http://127.0.0.1:{args.port}"
    try:
        result = run_http(
            url,
            key,
            args.clients,
            args.batches,
            args.size,
            args.duration,
            args.known,
            proc.pid if proc else None,
        )
    finally:
        if proc is not None:
            stop_server(proc)
    if proc is not None:
        with sqlite3.connect(BENCH_DIR / "ingest.sqlite3") as db:
            stored = db.execute("SELECT COUNT(*) FROM ingest_event").fetchone()[0]
            resolved = db.execute(
                "SELECT COUNT(*) FROM ingest_event WHERE customer_id IS NOT NULL"
            ).fetchone()[0]
        if stored != result["accepted"] + 10:  # + the warm-up batch
            log(f"WARNING: {stored} events stored but {result['accepted']} accepted")
    else:
        stored = resolved = None
    raw = raw_sqlite_rate(result["rows"], args.size)

    log("")
    log(f"server          : {url} ({'uvicorn --workers ' + str(args.workers) if proc else 'external'})")
    log(f"clients         : {args.clients} processes, {args.size} events per batch")
    log(f"events accepted : {result['accepted']:,} in {result['elapsed']:.2f} s"
        f" ({result['failed_requests']} failed requests)")  # fmt: skip
    if result["first_error"]:
        log(f"first failure   : {result['first_error']}")
    if stored is not None:
        log(f"stored in DB    : {stored - 10:,} (with a customer resolved: {resolved:,})")
    log(f"batch latency   : p50 {result['p50'] * 1000:.0f} ms, p95 {result['p95'] * 1000:.0f} ms")
    cores = os.cpu_count() or 1
    log(f"client CPU      : {result['client_cpu']:.2f} s"
        f" ({result['client_cpu'] / (result['elapsed'] * cores):.0%} of {cores} cores)")  # fmt: skip
    if result["server_cpu"] is not None:
        log(f"server CPU      : {result['server_cpu']:.2f} s"
            f" ({result['server_cpu'] / (result['elapsed'] * cores):.0%} of {cores} cores,"
            f" {result['server_cpu'] / max(1, result['accepted']) * 1e6:.0f} µs per event)")  # fmt: skip
    log(f"HTTP end to end : {result['rate']:,.0f} events/s")
    log(f"raw SQLite      : {raw:,.0f} rows/s (executemany, same rows, {args.size} per transaction)")
    log(f"ratio           : {result['rate'] / raw:.3f} of the raw insert rate")


if __name__ == "__main__":
    main()
