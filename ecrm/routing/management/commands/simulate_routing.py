"""`manage.py simulate_routing [--seed N] [--occupancy 0.85] [--hours H] [--json]`: simulate a day
of the contact centre and compare the routing policies on the same arrivals (see
docs/routing-simulation.md). Pure computation: reads and writes nothing in the database."""

from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ecrm.routing.engine import POLICIES, Weights
from ecrm.routing.engine.simulate import (
    SKILL_SPEED,
    SKILL_SPEED_MILD,
    SKILL_SPEED_NONE,
    compare,
    format_table,
    generate_scenario,
)

SKILL_MODELS = {"strong": SKILL_SPEED, "mild": SKILL_SPEED_MILD, "none": SKILL_SPEED_NONE}


class Command(BaseCommand):
    help = (
        "Simulate a contact-centre day and compare the routing policies (optimal, round-robin, least-loaded)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seed", type=int, default=1, help="random seed of the day (default 1)")
        parser.add_argument("--occupancy", type=float, default=0.85,
                            help="occupancy round-robin is calibrated to (default 0.85)")  # fmt: skip
        parser.add_argument("--hours", type=float, default=8.0, help="length of the day (default 8)")
        parser.add_argument("--chat-agents", type=int, default=30)
        parser.add_argument("--phone-agents", type=int, default=20)
        parser.add_argument("--skill-model", choices=sorted(SKILL_MODELS), default="strong",
                            help="how much an agent's category level speeds handling (default strong)")  # fmt: skip
        parser.add_argument("--policies", default=",".join(POLICIES), help="comma-separated policies")
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")

    def handle(self, *args, **o) -> None:
        policies = tuple(p.strip() for p in o["policies"].split(",") if p.strip())
        unknown = [p for p in policies if p not in POLICIES]
        if unknown:
            raise CommandError(f"unknown policy {', '.join(unknown)}; choose from {', '.join(POLICIES)}")
        if not 0.05 <= o["occupancy"] < 1.0:
            raise CommandError("--occupancy must be between 0.05 and 1 (exclusive)")
        if o["hours"] <= 0 or o["chat_agents"] < 1 or o["phone_agents"] < 1:
            raise CommandError("--hours, --chat-agents and --phone-agents must be positive")
        started = time.perf_counter()
        scenario = generate_scenario(
            o["seed"],
            o["occupancy"],
            hours=o["hours"],
            n_chat=o["chat_agents"],
            n_phone=o["phone_agents"],
            skill_speed=SKILL_MODELS[o["skill_model"]],
        )
        results = compare(scenario, policies, Weights())
        elapsed = time.perf_counter() - started
        summary = {
            "seed": o["seed"],
            "hours": o["hours"],
            "target_occupancy": o["occupancy"],
            "skill_model": o["skill_model"],
            "agents": len(scenario.agents),
            "items": len(scenario),
            "load_factor": round(scenario.load_factor, 4),
            "seconds": round(elapsed, 2),
        }
        if o["json"]:
            payload = {**summary, "results": {p: r.as_dict() for p, r in results.items()}}
            self.stdout.write(json.dumps(payload, indent=2))
            return
        self.stdout.write(
            f"{summary['items']} items, {summary['agents']} agents, {o['hours']:g} h, seed {o['seed']}, "
            f"skill model {o['skill_model']}; arrivals calibrated so round-robin runs at "
            f"{o['occupancy']:.0%} occupancy ({elapsed:.1f} s)\n"
        )
        self.stdout.write(
            format_table(results, baseline="round_robin" if "round_robin" in results else policies[0])
        )
