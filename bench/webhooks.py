"""Outgoing webhooks: what the guard, the event fan-out and the sender cost.

    .venv/bin/python bench/webhooks.py [--deliveries 500] [--endpoints 10]

Builds its own SQLite database under var/bench-webhooks/ (migrated from scratch), runs a real HTTP
receiver in a thread on 127.0.0.1 (allow-listed for this run only), and prints:
- the SSRF guard's cost per URL (numeric host decided locally; a name resolved once);
- the domain-event handler's cost when no endpoint subscribes (the hot path for every write);
- fan-out: deliveries created and queued per event with N subscribed endpoints;
- send throughput and latency of signed deliveries to the local receiver (one worker, sequential).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench._util import percentile  # noqa: E402

VAR = ROOT / "var" / "bench-webhooks"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliveries", type=int, default=500)
    parser.add_argument("--endpoints", type=int, default=10)
    args = parser.parse_args()
    shutil.rmtree(VAR, ignore_errors=True)
    VAR.mkdir(parents=True)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings.base", DEBUG="0", LOG_LEVEL="WARNING",
        SQLITE_PATH=str(VAR / "db.sqlite3"), HUEY_SQLITE_PATH=str(VAR / "tasks.sqlite3"),
    )  # fmt: skip
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from ecrm.core import events, http
    from ecrm.core.models import Role, User
    from ecrm.core.tests.http_testserver import LocalServer
    from ecrm.webhooks import services
    from ecrm.webhooks.models import Delivery
    from ecrm.webhooks.tasks import send_due

    server = LocalServer().start()
    settings.ECRM_OUTBOUND_ALLOWLIST = [f"127.0.0.1:{server.port}"]
    admin = User.objects.create_user("bench-admin", password=None, role=Role.ADMIN)
    rows = []

    def timed(label: str, fn, n: int, unit: str = "µs") -> None:
        samples = []
        for _ in range(n):
            t = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t)
        scale = 1e6 if unit == "µs" else 1e3
        rows.append((label, n, percentile(samples, 50) * scale, percentile(samples, 95) * scale, unit))

    def refused(url: str):
        def go():
            try:
                http.check_destination(url)
            except http.OutboundRefused:
                return
            raise AssertionError(url)

        return go

    timed("guard: refuse http://2130706433/ (no lookup)", refused("http://2130706433/"), 5000)
    timed("guard: refuse http://[::ffff:a9fe:a9fe]/", refused("http://[::ffff:a9fe:a9fe]/"), 5000)
    timed("guard: refuse http://localhost/ (one lookup)", refused("http://localhost/"), 1000)
    timed("guard: allow allow-listed test server", lambda: http.check_destination(server.url), 5000)

    services.do_create_endpoint(actor=admin, name="orders only", url=server.url, events=["order."])
    tick = events.Event(name="ticket.created", subject_type="ticket", subject_id=None)
    timed("event handler, no endpoint subscribed", lambda: services.on_event(tick), 5000)

    for i in range(args.endpoints - 1):
        services.do_create_endpoint(
            actor=admin, name=f"ticket {i}", url=f"{server.url}/{i}", events=["ticket."]
        )
    per_event = max(1, args.deliveries // (args.endpoints - 1))
    timed(
        f"fan-out: 1 event -> {args.endpoints - 1} deliveries queued",
        lambda: services.on_event(tick),
        per_event,
        "ms",
    )
    queued = Delivery.objects.count()
    started = time.perf_counter()
    sent = send_due()
    elapsed = time.perf_counter() - started
    ok = Delivery.objects.filter(status="succeeded").count()
    lat = list(Delivery.objects.values_list("duration_ms", flat=True))
    server.stop()
    print(
        f"\nOutgoing webhooks bench (SQLite, one worker, local receiver) — {time.strftime('%Y-%m-%d %H:%M')}"
    )
    print(f"{'case':58} {'n':>6} {'p50':>9} {'p95':>9}")
    for label, n, p50, p95, unit in rows:
        print(f"{label:58} {n:>6} {p50:>7.1f}{unit:>2} {p95:>7.1f}{unit:>2}")
    print(f"\nsend: {sent} of {queued} queued deliveries sent, {ok} succeeded, in {elapsed:.2f} s = "
          f"{sent / elapsed:.0f} deliveries/s; HTTP round trip p50 {percentile(lat, 50):.0f} ms, p95 {percentile(lat, 95):.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
