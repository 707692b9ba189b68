#!/usr/bin/env python
"""The contact center's figures in one run: each part is its own script (they build different data
and some start their own server), run here one after the other with their own output.

    .venv/bin/python bench/contact_center.py              # all four (about 10 minutes)
    .venv/bin/python bench/contact_center.py email chat   # some of them

    email    bench/cc_email.py    inbound emails per second (target >= 100/s)
    chat     bench/cc_chat.py     chat round trip p50/p99 with 200 concurrent chats (target p99 < 100 ms)
    inbox    bench/cc_pages.py    inbox list, search and conversation page at 100,000 conversations (< 200 ms)
    tickets  bench/cc_tickets.py  ticket list and ticket page at 100,000 tickets (< 200 ms)

Each part prints its figures next to its target; the exit code is non-zero only when a part failed to
run (read the figures for the targets).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PARTS = {"email": "cc_email.py", "chat": "cc_chat.py", "inbox": "cc_pages.py", "tickets": "cc_tickets.py"}


def main(argv: list[str]) -> int:
    chosen = argv or list(PARTS)
    unknown = [p for p in chosen if p not in PARTS]
    if unknown:
        print(f"unknown part(s): {', '.join(unknown)}; choose from {', '.join(PARTS)}", file=sys.stderr)
        return 2
    results = {}
    for part in chosen:
        print(f"\n===== {part}: bench/{PARTS[part]} =====", flush=True)
        results[part] = subprocess.run([sys.executable, str(HERE / PARTS[part])], check=False).returncode
    print("\n===== summary =====")
    for part, code in results.items():
        print(f"{part:8} {'ran (figures above)' if code == 0 else f'FAILED with exit code {code}'}")
    return 0 if all(code == 0 for code in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
