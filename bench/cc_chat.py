#!/usr/bin/env python
"""Live chat latency with 200 concurrent chats over WebSocket against a real uvicorn server.

    .venv/bin/python bench/cc_chat.py                       # 200 chats x 5 messages, port 18209
    .venv/bin/python bench/cc_chat.py --chats 50 --messages 10 --port 18208

A fresh SQLite database in a temporary folder (removed afterwards; var/ecrm.sqlite3 is never
touched), one uvicorn process running `config.asgi:application` and the Huey worker beside it, as
`make run` starts them (the embedded channel layer relays the worker's events to the web process).
200 visitors each hold a socket on /ws/chat/ (signed session tokens, as the widget gets them from
POST /connect/chat/session; issued in-process here because that endpoint limits sessions per
address) and send messages a human pace apart (3-8 s, random; --pace). One agent, the demo manager
signed in through the login form, holds the console's /ws/inbox/ socket (a manager's joins
`conversations.all`, so it gets every conversation's `message.created`). Each visitor's
third message is answered by the agent through the inbox's reply endpoint (POST /inbox/<id>/reply/).

Measured per message, wall clock on this machine:
  visitor -> agent   from the visitor's send to the agent socket's `message.created` (the round trip
                     through the server: rate limit, receive_inbound, commit, group publish)
  visitor ack        from the visitor's send to its own `ack`
  agent -> visitor   from the agent's reply POST to the visitor's socket receiving the reply
Target: p99 of visitor -> agent under 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
TARGET_P99_MS = 100.0

from _util import Session, start_server, start_worker, stop_server  # noqa: E402


def setup_django(tmp: Path, redis_url: str = "") -> dict[str, str]:
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "SQLITE_PATH": str(tmp / "bench.sqlite3"),
        "HUEY_SQLITE_PATH": str(tmp / "tasks.sqlite3"),
        "ECRM_VAR_DIR": str(tmp),
        "ECRM_PRIVATE_FILES": str(tmp / "private"),
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "AXES_ENABLED": "false",
    }
    os.environ.update(env)
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    if redis_url:  # the scale-out shape: channel layer and task queue on Redis, several server processes
        env["REDIS_URL"] = redis_url
        os.environ["REDIS_URL"] = redis_url
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return env


def build(chats: int):
    """Demo users, a chat inbox answered by the EN team, and one signed session per visitor."""
    from ecrm.conversations.channels.chat.services import do_start_session
    from ecrm.conversations.models import Inbox
    from ecrm.core.demo import ensure_demo_users
    from ecrm.core.models import Team

    ensure_demo_users()
    # No presence needed for the bench, and a visitor may write 10 messages / 10 s (the default).
    inbox = Inbox.objects.create(name="Bench chat", kind="chat", team=Team.objects.get(name="Service EN"),
                                 config={"offline_when_no_agent": False})  # fmt: skip
    tokens = []
    for i in range(chats):
        _, token = do_start_session(inbox=inbox, anonymous_id=f"bench-aid-{i}", name=f"Visitor {i}",
                                    email=f"visitor{i}@bench.example")  # fmt: skip
        tokens.append(token)
    return inbox, tokens


def sign_in(port: int, username: str, password: str) -> Session:
    s = Session("127.0.0.1", port)
    page = s.request("GET", "/login/")
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.body).group(1).decode()
    body = urllib.parse.urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token})
    s.request("POST", "/login/", body.encode(), {"Content-Type": "application/x-www-form-urlencoded",
                                                 "Referer": f"http://127.0.0.1:{port}/login/"})  # fmt: skip
    if "sessionid" not in s.cookies:
        raise RuntimeError("could not sign in the agent")
    return s


def wait_for_worker(port: int, timeout: float = 60) -> None:
    """Until /healthz reports the worker alive (its start-up is not part of the measured window)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        report = json.loads(Session("127.0.0.1", port).request("GET", "/healthz").body or b"{}")
        if (report.get("checks") or {}).get("worker", {}).get("status") == "ok":
            time.sleep(1)
            return
        time.sleep(0.5)
    raise RuntimeError("the worker did not report alive within 60 s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process and its direct children (uvicorn's workers) have used so far
    (Linux /proc), to report the server's cost per message: unlike latency, it hardly moves when
    other work shares the machine."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, tail = stat.read_text().rsplit(")", 1)
        except OSError:
            continue
        fields = tail.split()
        if int(stat.parent.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def run(port: int, tokens: list[str], messages: int, agent_http: Session, seed: int,
              pace: tuple[float, float], answer: bool = True) -> dict:  # fmt: skip
    from websockets.asyncio.client import connect

    rng = random.Random(seed)
    base = f"ws://127.0.0.1:{port}"
    sent_at: dict[str, float] = {}  # client_id -> send time
    mid_of: dict[int, str] = {}  # message id -> client_id
    agent_seen: dict[int, float] = {}  # message id -> time the agent socket got it
    to_agent: list[float] = []
    acks: list[float] = []
    replies: list[float] = []
    reply_sent: dict[str, float] = {}  # reply text -> POST start
    errors: list[str] = []
    timeline: list[tuple[float, float]] = []  # (send time, visitor -> agent ms), for the per-10 s table
    csrf = agent_http.cookies.get("csrftoken", "")

    def settle(mid: int) -> None:
        if mid in agent_seen and mid in mid_of:
            sent = sent_at.pop(mid_of.pop(mid))
            to_agent.append((agent_seen.pop(mid) - sent) * 1000)
            timeline.append((sent, to_agent[-1]))

    # The agent's console socket: the inbox's /ws/inbox/ (a manager joins `conversations.all`).
    agent = await connect(f"{base}/ws/inbox/", origin=f"http://127.0.0.1:{port}",
                          additional_headers={"Cookie": f"sessionid={agent_http.cookies['sessionid']}"})  # fmt: skip

    async def agent_reader():
        async for raw in agent:
            now = time.perf_counter()
            frame = json.loads(raw)
            if frame.get("type") == "message.created" and frame.get("direction") == "in":
                agent_seen[frame["message"]] = now
                settle(frame["message"])

    def post_reply(conversation_id: int, text: str) -> int:
        body = urllib.parse.urlencode({"body": text, "csrfmiddlewaretoken": csrf}).encode()
        s = Session("127.0.0.1", port, cookies=dict(agent_http.cookies))
        r = s.request("POST", f"/inbox/{conversation_id}/reply/", body, {
            "Content-Type": "application/x-www-form-urlencoded", "X-CSRFToken": csrf,
            "X-Requested-With": "fetch", "Referer": f"http://127.0.0.1:{port}/inbox/"})  # fmt: skip
        return r.status

    async def visitor(i: int, token: str):
        async with connect(f"{base}/ws/chat/", origin="http://shop.example") as ws:
            await ws.send(json.dumps({"type": "auth", "token": token}))
            hello = json.loads(await ws.recv())
            assert hello["type"] == "hello", hello
            waiting: dict[str, asyncio.Future] = {}
            reply_seen = asyncio.get_running_loop().create_future()

            async def read():  # every frame is timed when it arrives, whatever the sender is doing
                async for raw in ws:
                    now = time.perf_counter()
                    frame = json.loads(raw)
                    if frame["type"] in ("ack", "error") and frame.get("client_id") in waiting:
                        waiting.pop(frame["client_id"]).set_result((now, frame))
                    elif frame["type"] == "message" and frame["message"]["body"] in reply_sent:
                        replies.append((now - reply_sent.pop(frame["message"]["body"])) * 1000)
                        reply_seen.set_result(True)

            reader = asyncio.create_task(read())
            conv = None
            for n in range(messages):
                await asyncio.sleep(rng.uniform(*pace) if n else rng.uniform(0, pace[1]))
                client_id = f"v{i}-m{n}"
                done = waiting[client_id] = asyncio.get_running_loop().create_future()
                sent_at[client_id] = time.perf_counter()
                await ws.send(
                    json.dumps(
                        {"type": "message", "body": f"Visitor {i} message {n}", "client_id": client_id}
                    )
                )
                now, frame = await asyncio.wait_for(done, timeout=30)
                if frame["type"] == "error":
                    errors.append(frame.get("code", "error"))
                    sent_at.pop(client_id, None)
                    continue
                acks.append((now - sent_at[client_id]) * 1000)
                conv = frame["conversation"]
                mid_of[frame["message"]["id"]] = client_id
                settle(frame["message"]["id"])
                if n == 2 and answer:  # the agent answers the third message
                    text = f"Agent answer to visitor {i}"
                    reply_sent[text] = time.perf_counter()
                    status = await asyncio.to_thread(post_reply, conv, text)
                    if status >= 400:
                        errors.append(f"reply {status}")
            if any(t.startswith("Agent answer to visitor ") and t.endswith(f" {i}") for t in reply_sent):
                try:
                    await asyncio.wait_for(reply_seen, timeout=5)
                except TimeoutError:
                    errors.append("reply not received")
            reader.cancel()

    reader = asyncio.create_task(agent_reader())
    started = time.perf_counter()
    await asyncio.gather(*(visitor(i, t) for i, t in enumerate(tokens)))
    elapsed = time.perf_counter() - started
    drain_until = time.perf_counter() + 15  # the last agent events (late ones count, with their latency)
    while mid_of and time.perf_counter() < drain_until:
        await asyncio.sleep(0.1)
    reader.cancel()
    await agent.close()
    buckets: dict[int, list[float]] = {}
    for at, ms in timeline:
        buckets.setdefault(int((at - started) // 10), []).append(ms)
    return {"buckets": buckets, "to_agent": to_agent, "acks": acks, "replies": replies, "errors": errors, "elapsed": elapsed,
            "unmatched": len(mid_of)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chats", type=int, default=200)
    parser.add_argument("--messages", type=int, default=5)
    parser.add_argument("--port", type=int, default=18209)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--workers", type=int, default=1, help="uvicorn processes (more than 1 needs --redis)"
    )
    parser.add_argument("--redis", default="", metavar="URL",
                        help="run the scale-out shape: REDIS_URL for the channel layer and queue (the db is flushed)")  # fmt: skip
    parser.add_argument("--no-replies", action="store_true", help="the agent answers nobody")
    parser.add_argument("--no-worker", action="store_true",
                        help="do not start the background worker (by default it runs, as with `make run`)")  # fmt: skip
    parser.add_argument("--pace", type=float, nargs=2, default=(3.0, 8.0), metavar=("MIN", "MAX"),
                        help="seconds between two messages of one visitor (uniform); default 3 8")  # fmt: skip
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ecrm-bench-chat-"))
    proc = worker = None
    try:
        env = setup_django(tmp, args.redis)
        if args.redis:
            import redis

            redis.Redis.from_url(args.redis).flushdb()  # a clean channel layer and queue for the run
        _, tokens = build(args.chats)
        from ecrm.core.demo import DEMO_PASSWORD

        proc = start_server(env, args.port, workers=args.workers, log=tmp / "server.log")
        if not args.no_worker:
            worker = start_worker(env, log=tmp / "worker.log")
            wait_for_worker(args.port)
        agent_http = sign_in(args.port, "manager", DEMO_PASSWORD)
        load_before = os.getloadavg()[0]
        cpu_before = cpu_seconds(proc.pid)
        worker_before = cpu_seconds(worker.pid) if worker else 0.0
        result = asyncio.run(run(args.port, tokens, args.messages, agent_http, args.seed, tuple(args.pace),
                                 not args.no_replies))
        server_cpu = cpu_seconds(proc.pid) - cpu_before
        worker_cpu = cpu_seconds(worker.pid) - worker_before if worker else 0.0
    finally:
        for p in (proc, worker):
            if p is not None:
                stop_server(p)
        shutil.rmtree(tmp, ignore_errors=True)

    n = len(result["to_agent"])
    print(f"\n{args.chats} concurrent chats x {args.messages} messages, {result['elapsed']:.1f} s, "
          f"{n / result['elapsed']:.0f} messages/s; errors: {len(result['errors'])} {sorted(set(result['errors']))}")  # fmt: skip
    print(f"pace {args.pace[0]:g}-{args.pace[1]:g} s between a visitor's messages; load average {load_before:.1f} "
          f"before and {os.getloadavg()[0]:.1f} after the run on {os.cpu_count()} cores")  # fmt: skip
    sent = args.chats * args.messages
    print(f"server CPU {server_cpu:.1f} s in {result['elapsed']:.1f} s ({server_cpu / result['elapsed'] * 100:.0f}% of "
          f"one core): {server_cpu / sent * 1000:.1f} ms per visitor message, all work included (sockets, "
          f"{len(result['replies'])} agent replies, publishing); {result['unmatched']} messages never reached "
          "the agent socket")  # fmt: skip
    print(f"worker CPU {worker_cpu:.1f} s" if worker else "no worker ran (--no-worker)")
    print(f"{'path':<20}{'n':>6}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for label, key in (
        ("visitor -> agent", "to_agent"),
        ("visitor ack", "acks"),
        ("agent -> visitor", "replies"),
    ):
        values = result[key]
        if values:
            print(f"{label:<20}{len(values):>6}{statistics.median(values):>10.1f}{pct(values, 90):>10.1f}"
                  f"{pct(values, 99):>10.1f}{max(values):>10.1f}")  # fmt: skip
    print("visitor -> agent by 10 s of the run: " + ", ".join(
        f"{k * 10}-{k * 10 + 10}s p99 {pct(v, 99):.0f} ms (n={len(v)})" for k, v in sorted(result["buckets"].items())))  # fmt: skip
    p99 = pct(result["to_agent"], 99) if n else float("inf")
    verdict = "meets" if p99 < TARGET_P99_MS else "misses"
    print(f"\nvisitor -> agent p99 {p99:.1f} ms {verdict} the target of {TARGET_P99_MS:.0f} ms")


if __name__ == "__main__":
    main()
