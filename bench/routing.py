#!/usr/bin/env python
"""Routing: the simulator's policy comparison at 85% occupancy, and the time of one batch solve.

    .venv/bin/python bench/routing.py                  # both parts (about 2 minutes)
    .venv/bin/python bench/routing.py --only sim --seeds 5
    .venv/bin/python bench/routing.py --only solve --repeat 50

Part 1 (`sim`): for each seed, one simulated 8-hour day (30 chat + 20 phone agents) whose arrival
rate is calibrated so round-robin runs at 85% occupancy; every policy runs on the same arrivals.
Prints the table of the first seed, then per-seed changes against round-robin, for the default
skill model and for two sensitivity models (half the skill effect on handling time, and none).

Part 2 (`solve`): one batch of 1,000 waiting items (60% chat, 40% email; zh or en required, a
preferred category) and 200 agents (chat capacity 3, email 10; 75% speak zh, 45% en), timed through
the public `solve()` (scoring, the optimal solve and the explanations), in three states of the
agents: busy (85% of slots taken at random), half and idle. Median and p95 over `--repeat` runs,
wall clock and process CPU time (the CPU figure is the steadier one on a shared machine).
Target from the issue: under 20 ms.

Pure computation: no database, no server. Timings are from whatever machine runs this.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ecrm.routing.engine import POLICIES, AgentSpec, ItemSpec, Weights, solve  # noqa: E402
from ecrm.routing.engine.policies import _pick_method  # noqa: E402
from ecrm.routing.engine.simulate import (  # noqa: E402
    SKILL_SPEED,
    SKILL_SPEED_MILD,
    SKILL_SPEED_NONE,
    compare,
    format_table,
    generate_scenario,
)

MODELS = {"strong (default)": SKILL_SPEED, "mild": SKILL_SPEED_MILD, "none": SKILL_SPEED_NONE}


def pct(values, q):
    return float(np.percentile(values, q))


def bench_sim(seeds: int, hours: float) -> None:
    print(
        f"## Simulated day: {hours:g} h, 30 chat + 20 phone agents, round-robin calibrated to 85% occupancy\n"
    )
    for name, speed in MODELS.items():
        rows = []
        started = time.perf_counter()
        for seed in range(1, seeds + 1):
            scenario = generate_scenario(seed, 0.85, hours=hours, skill_speed=speed)
            results = compare(scenario)
            if seed == 1:
                print(f"### Skill model: {name} — seed 1 ({len(scenario)} items)\n")
                print(format_table(results))
                print()
            rows.append((seed, len(scenario), results))
        elapsed = time.perf_counter() - started
        print(f"Per seed, skill model {name} ({elapsed:.0f} s for {seeds} seeds):\n")
        print(
            "| seed | items | RR occupancy | optimal mean wait vs RR | LL mean wait vs RR "
            "| SLA met opt / RR / LL | skill match opt / RR / LL |"
        )
        print("|---:|---:|---:|---:|---:|---|---|")
        changes = []
        for seed, n, r in rows:
            opt, rr, ll = r["optimal"], r["round_robin"], r["least_loaded"]
            change = opt.mean_wait / rr.mean_wait - 1
            changes.append(change)
            print(
                f"| {seed} | {n} | {rr.occupancy:.1%} | {change:+.0%} | {ll.mean_wait / rr.mean_wait - 1:+.0%} | "
                f"{opt.sla_attainment:.1%} / {rr.sla_attainment:.1%} / {ll.sla_attainment:.1%} | "
                f"{opt.skill_match:.2f} / {rr.skill_match:.2f} / {ll.skill_match:.2f} |"
            )
        met = sum(c <= -0.2 for c in changes)
        print(
            f"\nOptimal vs round-robin mean wait: median {statistics.median(changes):+.0%}, "
            f"range {min(changes):+.0%} .. {max(changes):+.0%}; "
            f"target (at least 20% lower) met on {met} of {len(changes)} seeds.\n"
        )


def make_batch(occupied: float, seed: int = 1) -> tuple[list[ItemSpec], list[AgentSpec]]:
    rng = np.random.default_rng(seed)
    cats = ["returns", "billing", "orders", "technical", "shipping"]
    agents = []
    for a in range(200):
        skills = {}
        r = rng.random()
        if r < 0.75:
            skills["lang:zh"] = int(rng.integers(3, 6))
        if r > 0.55:
            skills["lang:en"] = int(rng.integers(3, 6))
        for c in rng.choice(cats, 3, replace=False):
            skills[f"cat:{c}"] = int(rng.integers(1, 6))
        load = {"chat": int(rng.binomial(3, occupied)), "email": int(rng.binomial(10, occupied))}
        agents.append(AgentSpec(a + 1, skills, {"chat": 3, "email": 10}, load, name=f"agent {a + 1}"))
    items = []
    for i in range(1000):
        items.append(
            ItemSpec(
                id=i + 1,
                channel="chat" if rng.random() < 0.6 else "email",
                skills={"lang:" + ("zh" if rng.random() < 0.7 else "en"): 1},
                preferred={f"cat:{cats[rng.integers(5)]}": 3},
                priority=int(rng.integers(0, 3)),
                sla_seconds_left=float(rng.uniform(-300, 3600)),
                value=1.0 if rng.random() < 0.1 else float(rng.uniform(0, 0.5)),
                waited_seconds=float(rng.uniform(0, 1800)),
                last_agent_id=int(rng.integers(1, 201)) if rng.random() < 0.05 else None,
            )
        )
    return items, agents


def bench_solve(repeat: int) -> None:
    print("## One batch: 1,000 waiting items x 200 agents, through solve() (target < 20 ms)\n")
    print("Scores and the solve; each decision's reasons (the text an agent reads) are written when read —")
    print("the last column is the time to write them for every decision of the batch.\n")
    print(
        "| agents' state | free slots chat / email | policy | solver | assigned | wall p50 ms | wall p95 ms "
        "| CPU p50 ms | CPU p95 ms | reasons, all ms |"
    )
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|")
    weights = Weights()
    for label, occupied in (("busy (85% taken)", 0.85), ("half (50% taken)", 0.5), ("idle (0% taken)", 0.0)):
        items, agents = make_batch(occupied)
        free = {ch: sum(a.free(ch) for a in agents) for ch in ("chat", "email")}
        n = {ch: sum(it.channel == ch for it in items) for ch in ("chat", "email")}
        # what "auto" picks per channel (an agent offers at most as many slots as there are items)
        methods = "/".join(
            _pick_method(n[ch], sum(min(a.free(ch), n[ch]) for a in agents)) for ch in ("chat", "email")
        )
        for policy in POLICIES:
            state: dict = {}
            solve(items, agents, weights, policy, state)  # warm-up
            walls, cpus = [], []
            for _ in range(repeat if policy == "optimal" else max(5, repeat // 5)):
                w0, c0 = time.perf_counter(), time.process_time()
                decisions = solve(items, agents, weights, policy, state)
                cpus.append((time.process_time() - c0) * 1000)
                walls.append((time.perf_counter() - w0) * 1000)
            w0 = time.perf_counter()
            for d in decisions:
                d.reasons  # noqa: B018 - written on first read
            reasons_ms = (time.perf_counter() - w0) * 1000
            print(
                f"| {label} | {free['chat']} / {free['email']} | {policy} | "
                f"{methods if policy == 'optimal' else '-'} | {len(decisions)} | {pct(walls, 50):.1f} | "
                f"{pct(walls, 95):.1f} | {pct(cpus, 50):.1f} | {pct(cpus, 95):.1f} | {reasons_ms:.1f} |"
            )
    print()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("sim", "solve"))
    parser.add_argument("--seeds", type=int, default=3, help="simulated days per skill model (default 3)")
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--repeat", type=int, default=30, help="timed solves of the optimal policy per state")
    args = parser.parse_args(argv)
    if args.only in (None, "solve"):
        bench_solve(args.repeat)
    if args.only in (None, "sim"):
        bench_sim(args.seeds, args.hours)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
