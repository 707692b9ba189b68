"""Benchmark: import 1,000,000 order lines (and the 250,000 orders they belong to) through the CLI
path (`manage.py import`), on a fresh SQLite database, and report rows/s and peak memory.

    .venv/bin/python bench/import_lines.py [--lines 1000000] [--orders 250000] [--keep]

Each import runs in its own process so its peak RSS (resource.getrusage) is its own. The point is
that memory stays flat: the importer streams the file and holds one chunk at a time.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def generate(folder: Path, n_orders: int, n_lines: int, seed: int = 7) -> tuple[Path, Path]:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    orders, lines = folder / "orders.csv", folder / "order_lines.csv"
    skus = [(f"SKU-{i:05d}", f"Product {i}", rng.randint(5, 900)) for i in range(5000)]
    n_customers = max(1, n_orders // 4)
    # Lines per order: spread n_lines over n_orders (1 to 7 each, averaging n_lines / n_orders).
    per_order = [1] * n_orders
    for _ in range(n_lines - n_orders):
        per_order[rng.randrange(n_orders)] += 1
    with open(orders, "w", encoding="utf-8", newline="") as fo, open(lines, "w", encoding="utf-8", newline="") as fl:
        fo.write("order_id,customer_id,email,placed_at,total,currency,status\n")
        fl.write("order_id,sku,name,qty,price\n")
        statuses = ["paid", "shipped", "delivered", "completed", "completed", "cancelled"]
        for i in range(n_orders):
            c = rng.randrange(n_customers)
            total = 0
            order_lines = []
            for _ in range(per_order[i]):
                sku, name, price = skus[rng.randrange(len(skus))]
                qty = rng.randint(1, 3)
                total += qty * price
                order_lines.append(f"O-{i:07d},{sku},{name},{qty},{price}.00\n")
            day = 1 + i % 28
            fo.write(f"O-{i:07d},C-{c:06d},c{c}@example.com,2024-{1 + i % 12:02d}-{day:02d} 10:{i % 60:02d}:00,{total}.00,CNY,{rng.choice(statuses)}\n")
            fl.writelines(order_lines)
    return orders, lines


def child(kind: str, path: str) -> None:
    """Run one import in this process and print its peak RSS (what the parent reads)."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    django.setup()
    from django.core.management import call_command

    call_command("import", kind, path, "--no-progress")
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"PEAK_RSS_KB={peak_kb}")
    # RssFile is SQLite's memory-mapped database file (mmap_size in settings) and shared libraries,
    # which the kernel can drop at will; RssAnon is the process's own heap (Python + SQLite cache).
    status = Path("/proc/self/status")
    if status.exists():
        wanted = ("RssAnon", "RssFile")
        parts = [line.split(":")[0] + "=" + line.split(":")[1].strip() for line in status.read_text().splitlines()
                 if line.startswith(wanted)]  # fmt: skip
        print("RSS_PARTS=" + " ".join(parts))


def run_import(kind: str, path: Path, env: dict[str, str]) -> tuple[float, int, str]:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(path)], env=env, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    if proc.returncode:
        sys.exit(f"{kind} import failed:\n{proc.stdout}\n{proc.stderr}")
    peak = int(next(line.split("=")[1] for line in proc.stdout.splitlines() if line.startswith("PEAK_RSS_KB=")))
    summary = next(line for line in proc.stdout.splitlines() if "rows read" in line)
    parts = next((line.split("=", 1)[1] for line in proc.stdout.splitlines() if line.startswith("RSS_PARTS=")), "")
    return seconds, peak, f"{summary}] [at exit: {parts}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=250_000)
    parser.add_argument("--dir", default=str(ROOT / "var" / "bench-import"))
    parser.add_argument("--keep", action="store_true", help="Keep the generated files and database.")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    folder = Path(args.dir)
    db = folder / "bench.sqlite3"
    for leftover in folder.glob("bench.sqlite3*"):
        leftover.unlink()
    started = time.perf_counter()
    orders, lines = generate(folder, args.orders, args.lines)
    print(f"generated {args.orders:,} orders and {args.lines:,} lines ({lines.stat().st_size / 2**20:.0f} MB) "
          f"in {time.perf_counter() - started:.1f} s")  # fmt: skip
    env = {**os.environ, "SQLITE_PATH": str(db), "HUEY_SQLITE_PATH": str(folder / "bench-tasks.sqlite3"),
           "DJANGO_SETTINGS_MODULE": "config.settings.base", "LOG_LEVEL": "WARNING"}  # fmt: skip
    env.pop("DATABASE_URL", None)
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v", "0"], env=env, check=True)

    for kind, path, rows in (("orders", orders, args.orders), ("order_lines", lines, args.lines)):
        seconds, peak_kb, summary = run_import(kind, path, env)
        print(f"{kind:12s} {rows:>9,} rows  {seconds:6.1f} s  {rows / seconds:9,.0f} rows/s  "
              f"peak RSS {peak_kb / 1024:6.0f} MB   [{summary}]")  # fmt: skip
    if not args.keep:
        for f in folder.iterdir():
            f.unlink()
        folder.rmdir()


if __name__ == "__main__":
    main()
