#!/usr/bin/env python
"""Ticket list (each view) and ticket page server times at 100,000 tickets.

    .venv/bin/python bench/cc_tickets.py                 # build var/bench-tickets/tickets.sqlite3, then measure
    .venv/bin/python bench/cc_tickets.py --reuse         # measure on the database built last time
    .venv/bin/python bench/cc_tickets.py --tickets 20000 --db var/bench-tickets/small.sqlite3

What it builds (ORM bulk_create in one process, in a temporary SQLite file under var/bench-tickets/):
the demo cast, 20,000 customers, 100,000 tickets spread over two teams and no team (45% / 45% / 10%),
statuses 35% open-ish (new, open, pending, on hold) and 65% solved/closed, priorities and types at
random, a fifth assigned to agent_li, SLA due times set, two tags on every tenth ticket, a "created"
activity line per ticket, and 12 comments + 20 activity lines on the 2,000 newest tickets.

What it measures: a real uvicorn server (DEBUG off) on 127.0.0.1:18501 (or --port), signed in as the
manager (sees all) and as agent_li (her team, no team and her own); each case `--repeat` times after
two warm-ups on one keep-alive connection; the `Server-Timing` header (the app's own time) and the
wall clock, p50/p95/max, against the 200 ms target.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._util import ROOT, Session, start_server, stop_server, summary  # noqa: E402

TARGET_MS = 200
BENCH_DIR = ROOT / "var" / "bench-tickets"
DEFAULT_DB = BENCH_DIR / "tickets.sqlite3"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def setup_django(db: Path) -> None:
    """Point Django at the bench database and bring its schema up to date (also on --reuse)."""
    os.environ["SQLITE_PATH"] = str(db)
    os.environ["DATABASE_URL"] = ""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    import django

    django.setup()
    from django.core.management import call_command

    log("migrate")
    call_command("migrate", verbosity=0)


def build(db: Path, n_tickets: int, n_customers: int) -> None:
    if db.exists():
        for suffix in ("", "-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
    db.parent.mkdir(parents=True, exist_ok=True)
    setup_django(db)
    from django.db import connection, transaction

    from ecrm.core.demo import ensure_demo_users
    from ecrm.core.models import Team
    from ecrm.customers.models import Customer
    from ecrm.service.models import Ticket, TicketActivity, TicketComment, TicketTag

    cast = {u.username: u for u in ensure_demo_users()}
    teams = [Team.objects.get(name="Service CN"), Team.objects.get(name="Service EN"), None]
    rng = random.Random(42)
    now = dt.datetime.now(dt.UTC)
    with connection.cursor() as cur:
        cur.execute("PRAGMA journal_mode=OFF")
        cur.execute("PRAGMA synchronous=OFF")
    log(f"{n_customers:,} customers")
    with transaction.atomic():
        Customer.objects.bulk_create(
            [
                Customer(display_name=f"Customer {i}", search_name=f"customer {i}", email=f"c{i}@example.com")
                for i in range(n_customers)
            ],
            batch_size=5000,
        )
    customer_ids = list(Customer.objects.values_list("id", flat=True))
    tags = [TicketTag.objects.create(name=n) for n in ("fragile", "refund-delay", "vip")]
    statuses = (
        ["new"] * 8 + ["open"] * 15 + ["pending"] * 8 + ["on_hold"] * 4 + ["solved"] * 35 + ["closed"] * 30
    )
    log(f"{n_tickets:,} tickets")
    batch = 10_000
    for start in range(0, n_tickets, batch):
        rows, acts = [], []
        with transaction.atomic():
            for i in range(start, min(start + batch, n_tickets)):
                created = now - dt.timedelta(minutes=(n_tickets - i) * 5)
                status = rng.choice(statuses)
                team = teams[0] if rng.random() < 0.45 else (teams[1] if rng.random() < 0.82 else None)
                if i >= n_tickets - 2:
                    team = teams[0]  # the two ticket pages measured: visible to agent_li too
                rows.append(
                    Ticket(
                        id=i + 1,
                        number=1001 + i,
                        subject=f"Order problem {i} "
                        + rng.choice(["parcel late", "broken item", "refund", "size"]),
                        description="…",
                        type=rng.choice(
                            ["question", "complaint", "return_refund", "delivery_problem", "technical"]
                        ),
                        priority=rng.choice(["low", "normal", "normal", "high", "urgent"]),
                        status=status,
                        team=team,
                        assignee=cast["agent_li"] if rng.random() < 0.2 else None,
                        customer_id=rng.choice(customer_ids),
                        created_at=created,
                        updated_at=created + dt.timedelta(minutes=rng.randrange(0, 600)),
                        solved_at=created + dt.timedelta(hours=5) if status in ("solved", "closed") else None,
                        first_response_at=created + dt.timedelta(minutes=40) if status != "new" else None,
                        first_response_due=created + dt.timedelta(hours=1),
                        resolution_due=created + dt.timedelta(hours=8),
                    )
                )
                acts.append(
                    TicketActivity(ticket_id=i + 1, at=created, kind="created", data={"source": "console"})
                )
            Ticket.objects.bulk_create(rows, batch_size=2000)
            TicketActivity.objects.bulk_create(acts, batch_size=2000)
            through = Ticket.tags.through
            through.objects.bulk_create(
                [
                    through(ticket_id=t.id, tickettag_id=tg.id)
                    for t in rows
                    if t.id % 10 == 0
                    for tg in tags[:2]
                ],
                batch_size=2000,
            )
        log(f"  {min(start + batch, n_tickets):,}")
    log("comments and activity on the newest 2,000 tickets")
    with transaction.atomic():
        comments, acts = [], []
        for tid in range(max(1, n_tickets - 1999), n_tickets + 1):
            for k in range(12):
                comments.append(
                    TicketComment(
                        ticket_id=tid,
                        author=cast["agent_li"] if k % 2 else None,
                        customer_id=None if k % 2 else customer_ids[0],
                        body=f"message {k} " * 20,
                        is_public=k % 3 != 0,
                        created_at=now - dt.timedelta(minutes=60 - k),
                    )  # fmt: skip
                )
            for k in range(20):
                acts.append(TicketActivity(ticket_id=tid, at=now - dt.timedelta(minutes=50 - k), kind="updated",
                                           actor=cast["agent_li"], data={"changes": {"priority": ["low", "high"]}}))  # fmt: skip
        TicketComment.objects.bulk_create(comments, batch_size=5000)
        TicketActivity.objects.bulk_create(acts, batch_size=5000)
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
        cur.execute("PRAGMA journal_mode=WAL")
    log("built")


def measure(db: Path, port: int, repeat: int, n_tickets: int) -> list[tuple[str, str, dict, dict]]:
    log_file = BENCH_DIR / "server.log"
    proc = start_server({"SQLITE_PATH": str(db), "DATABASE_URL": ""}, port, log=log_file)
    try:
        from ecrm.core.demo import DEMO_PASSWORD

        sessions = {}
        for user in ("manager", "agent_li"):
            s = Session("127.0.0.1", port)
            s.login(user, DEMO_PASSWORD)
            sessions[user] = s
        newest = n_tickets  # has comments and activity
        cases = [
            ("manager", "list: all, not solved", "/service/?view=all&status=open"),
            ("manager", "list: all, any status", "/service/?view=all&status=any"),
            ("manager", "list: unassigned", "/service/?view=unassigned"),
            ("manager", "list: urgent, not solved", "/service/?view=all&priority=urgent"),
            ("manager", "list: page 20 (keyset)", None),
            ("manager", "search: number", f"/service/?view=all&status=any&q=T-{1000 + n_tickets // 2}"),
            ("manager", "search: subject text", "/service/?view=all&status=any&q=broken"),
            ("manager", "ticket page", f"/service/{newest}/"),
            ("agent_li", "list: my teams", "/service/?view=teams"),
            ("agent_li", "list: mine", "/service/?view=mine"),
            ("agent_li", "list: all visible", "/service/?view=all&status=any"),
            ("agent_li", "ticket page", f"/service/{newest - 1}/"),
            ("manager", "API list", "/api/v1/service/tickets?limit=50"),
        ]
        results = []
        for user, name, path in cases:
            s = sessions[user]
            if path is None:  # follow "next page" 19 times from the first page
                path = "/service/?view=all&status=any"
                for _ in range(19):
                    body = s.get(path).body.decode()
                    after = body.split("after=")[1].split('"')[0].split("&")[0]
                    path = f"/service/?view=all&status=any&after={after}"
            for _ in range(2):
                s.get(path)
            server, wall = [], []
            for _ in range(repeat):
                r = s.get(path)
                if r.status != 200:
                    raise RuntimeError(f"{name}: HTTP {r.status}")
                wall.append(r.ms)
                if r.server_ms is not None:
                    server.append(r.server_ms)
            results.append((user, name, summary(server), summary(wall)))
        return results
    finally:
        stop_server(proc)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--db", type=Path, default=DEFAULT_DB)
    parser.add_argument("--reuse", action="store_true", help="measure on the database built last time")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--port", type=int, default=18501)
    args = parser.parse_args()
    db = args.db.resolve()
    if args.reuse:
        setup_django(db)
    else:
        build(db, args.tickets, args.customers)
    results = measure(db, args.port, args.repeat, args.tickets)
    print(
        f"\n{args.tickets:,} tickets · server time (Server-Timing) and wall clock, ms · target {TARGET_MS} ms"
    )
    print(f"{'user':<9} {'case':<28} {'srv p50':>8} {'srv p95':>8} {'wall p50':>9} {'wall p95':>9}  ok")
    worst = 0.0
    for user, name, server, wall in results:
        worst = max(worst, server["p95"])
        ok = "yes" if server["p95"] < TARGET_MS else "NO"
        print(
            f"{user:<9} {name:<28} {server['p50']:8.1f} {server['p95']:8.1f} {wall['p50']:9.1f} {wall['p95']:9.1f}  {ok}"
        )
    print(f"\nworst server p95: {worst:.1f} ms")


if __name__ == "__main__":
    main()
