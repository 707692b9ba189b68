#!/usr/bin/env python
"""Agent inbox page times at 100,000 conversations (about 300,000 messages).

    .venv/bin/python bench/cc_pages.py                  # build var/bench-cc/cc.sqlite3, then measure
    .venv/bin/python bench/cc_pages.py --reuse          # measure on the database built last time
    .venv/bin/python bench/cc_pages.py --conversations 20000 --repeat 10

Builds a fresh SQLite database (migrations, the demo cast, 20,000 customers with email identities,
6 inboxes on two teams, 100,000 conversations spread over statuses, channels, teams and assignees,
~3 messages each) with bulk_create, then renders each page in-process with Django's test Client
(DEBUG off, signed in as the demo manager or agent), `--repeat` times after two warm-ups, and prints
server time p50/p95/max per case against the 200 ms target, with the query count of one request.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DIR = ROOT / "var" / "bench-cc"
DB = BENCH_DIR / "cc.sqlite3"
TARGET_MS = 200


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def setup_django(reuse: bool) -> None:
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    if not reuse:
        for suffix in ("", "-wal", "-shm"):
            Path(str(DB) + suffix).unlink(missing_ok=True)
    os.environ.pop("DATABASE_URL", None)
    os.environ["SQLITE_PATH"] = str(DB)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    os.environ["DEBUG"] = "0"
    import django

    django.setup()


def build(n_conversations: int, n_customers: int) -> None:
    from django.core.management import call_command
    from django.utils import timezone

    from ecrm.conversations.models import Conversation, Inbox, Message
    from ecrm.core.demo import ensure_demo_users
    from ecrm.core.models import Team
    from ecrm.customers.models import Customer, Identity

    t0 = time.perf_counter()
    call_command("migrate", verbosity=0)
    users = {u.username: u for u in ensure_demo_users()}
    cn, en = Team.objects.get(name="Service CN"), Team.objects.get(name="Service EN")
    rng = random.Random(4)
    log("customers")
    surnames = ["Wang", "Li", "Zhang", "Liu", "Chen", "Smith", "Jones", "Brown", "Garcia", "Müller"]
    customers = [
        Customer(first_name=f"C{i}", last_name=surnames[i % 10], display_name=f"C{i} {surnames[i % 10]}",
                 search_name=f"c{i} {surnames[i % 10].lower()}", email=f"c{i}@example.com")
        for i in range(n_customers)
    ]  # fmt: skip
    Customer.objects.bulk_create(customers, batch_size=5000)
    ids = list(Customer.objects.order_by("id").values_list("id", flat=True))
    Identity.objects.bulk_create(
        [Identity(customer_id=pk, kind="email", value=f"c{i}@example.com") for i, pk in enumerate(ids)],
        batch_size=5000,
    )
    inboxes = [
        Inbox.objects.create(name=f"{team.name} {kind}", kind=kind, team=team)
        for team in (cn, en)
        for kind in ("email", "chat", "webform")
    ]
    agents = {cn.pk: [users["agent_li"], users["manager"]], en.pk: [users["agent_bob"], users["manager"]]}
    log(f"{n_conversations} conversations")
    now = timezone.now()
    statuses = ["open"] * 2 + ["pending"] + ["resolved"] * 7
    batch: list[Conversation] = []
    for i in range(n_conversations):
        inbox = inboxes[rng.randrange(len(inboxes))]
        at = now - dt.timedelta(minutes=rng.randrange(0, 60 * 24 * 365))
        assignee = rng.choice(agents[inbox.team_id] + [None])
        batch.append(Conversation(
            inbox=inbox, channel=inbox.kind, customer_id=ids[rng.randrange(len(ids))], team_id=inbox.team_id,
            assignee=assignee, status=rng.choice(statuses), subject=f"Question {i} about order SO-{i:06d}",
            last_message_at=at, last_inbound_at=at, unread=rng.choice([0, 0, 0, 1]),
        ))  # fmt: skip
        if len(batch) == 10_000:
            Conversation.objects.bulk_create(batch)
            batch = []
    Conversation.objects.bulk_create(batch)
    log("messages")
    msgs: list[Message] = []
    for conv_id, inbox_id, at in Conversation.objects.values_list(
        "id", "inbox_id", "last_message_at"
    ).iterator():
        for k, direction in enumerate(("in", "out", "in")):
            msgs.append(Message(
                conversation_id=conv_id, inbox_id=inbox_id, direction=direction,
                author=users["agent_li"] if direction == "out" else None,
                body_text=f"Message {k} of {conv_id}: where is my parcel? 我的包裹在哪里？",
                status="sent" if direction == "out" else "received",
                created_at=at - dt.timedelta(minutes=30 * (2 - k)),
            ))  # fmt: skip
        if len(msgs) >= 30_000:
            Message.objects.bulk_create(msgs)
            msgs = []
    Message.objects.bulk_create(msgs)
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    log(f"built in {time.perf_counter() - t0:.0f} s")


def measure(repeat: int) -> list[tuple]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from ecrm.conversations.models import Conversation
    from ecrm.core.models import User

    manager, agent = User.objects.get(username="manager"), User.objects.get(username="agent_li")
    sample = Conversation.objects.filter(team__name="Service CN").order_by("-last_message_at").first()
    inbox = reverse("conversations:inbox")
    cases = [
        ("manager", "inbox: all open", inbox),
        ("manager", "inbox: all, any status", inbox + "?status=any"),
        ("manager", "inbox: mine", inbox + "?view=mine"),
        ("manager", "inbox: unassigned", inbox + "?view=unassigned"),
        ("manager", "inbox: resolved, chat", inbox + "?status=resolved&channel=chat"),
        ("agent_li", "inbox: agent, all visible", inbox),
        ("agent_li", "inbox: agent, my teams", inbox + "?view=teams"),
        ("manager", "search: email", inbox + "?q=c123%40example.com&status=any"),
        ("manager", "search: name prefix", inbox + "?q=C77&status=any"),
        ("manager", "search: subject word", inbox + "?q=SO-004242&status=any"),
        ("manager", "conversation page", reverse("conversations:detail", args=[sample.pk])),
        ("agent_li", "conversation page (agent)", reverse("conversations:detail", args=[sample.pk])),
        ("manager", "API list", "/api/v1/conversations/"),
    ]
    clients = {}
    for name, user in (("manager", manager), ("agent_li", agent)):
        clients[name] = Client()
        clients[name].force_login(user)
    # page 2 of the list via the cursor of page 1
    from ecrm.conversations.selectors import InboxFilters, inbox_page_for_user

    cursor = inbox_page_for_user(manager, InboxFilters()).next_cursor
    if cursor:
        from urllib.parse import quote

        cases.insert(1, ("manager", "inbox: all open, page 2", f"{inbox}?after={quote(cursor)}"))
    rows = []
    for who, label, url in cases:
        client = clients[who]
        for _ in range(2):
            assert client.get(url).status_code == 200, (label, url)
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - t) * 1000)
            assert response.status_code == 200
        with CaptureQueriesContext(connection) as ctx:
            client.get(url)
        times.sort()
        p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
        rows.append((label, statistics.median(times), p95, times[-1], len(ctx.captured_queries)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--reuse", action="store_true")
    args = parser.parse_args()
    setup_django(args.reuse)
    if not args.reuse:
        build(args.conversations, args.customers)
    from ecrm.conversations.models import Conversation, Message

    log(f"{Conversation.objects.count()} conversations, {Message.objects.count()} messages")
    rows = measure(args.repeat)
    print(f"\n{'case':<32} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'queries':>8}  target {TARGET_MS} ms")
    for label, p50, p95, worst, queries in rows:
        flag = "ok" if p95 < TARGET_MS else "SLOW"
        print(f"{label:<32} {p50:8.1f} {p95:8.1f} {worst:8.1f} {queries:8d}  {flag}")


if __name__ == "__main__":
    main()
