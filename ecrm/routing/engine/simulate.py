"""A discrete-event simulation of a contact centre, to compare routing policies on the same day.

    from ecrm.routing.engine.simulate import generate_scenario, compare, format_table
    scenario = generate_scenario(seed=1, occupancy=0.85)
    print(format_table(compare(scenario)))

The model (docs/routing-simulation.md says the same in prose):

- Channels: chat (an agent holds 2 or 3 chats at once) and phone (one call at a time). Each agent
  works one channel.
- Arrivals: Poisson per channel, with a rate that follows how many agents are on shift, so the
  load stays level through the day. Each arrival has a language (zh 70%, en 30%; a hard
  requirement), a category (returns, billing, orders, technical; a preferred skill), a customer
  value (10% VIPs) and a base handling time drawn from a lognormal (chat mean 7 min, phone mean
  5 min, sigma 0.6).
- Agents: languages at levels 3..5 (55% Chinese only, 20% English only, 25% both), one main
  category at level 4..5, one second at 2..3, the others at 0..1. Shifts: half work the whole
  day, a quarter the first 60%, a quarter the last 60%.
- Handling: the base time times a skill factor for the agent's level in the item's category
  (SKILL_SPEED: level 5 takes 0.75x, level 3 1.0x, no training 1.6x) times a multitasking factor
  for chat (each chat already in hand when a new one starts makes it 20% longer).
- Routing: on every event (an arrival, an item finished, a shift starting) the waiting items and
  the agents with a free slot go through `solve` with the policy under test; the items it leaves
  out keep waiting. Nobody abandons. At the end of the day arrivals stop and the agents whose
  shift ends then stay until the queue is empty.
- Every policy runs on the same arrivals, base handling times and shifts (the scenario holds
  them), so differences come from the routing alone.
"""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass, field

import numpy as np

from .policies import solve
from .types import POLICIES, AgentSpec, ItemSpec, Weights

CHANNELS = ("chat", "phone")
LANGUAGES = ("zh", "en")
LANGUAGE_MIX = (0.7, 0.3)
CATEGORIES = ("returns", "billing", "orders", "technical")
CATEGORY_MIX = (0.35, 0.25, 0.25, 0.15)
MEAN_HANDLE = {"chat": 420.0, "phone": 300.0}  # seconds, at skill level 3, alone
HANDLE_SIGMA = 0.6
SLA_TARGET = {"chat": 60.0, "phone": 20.0}  # answered within (seconds)
# handling-time factor by the agent's level in the item's category (0 = untrained)
SKILL_SPEED = (1.6, 1.35, 1.15, 1.0, 0.87, 0.75)
# sensitivity checks: half the effect, and none at all
SKILL_SPEED_MILD = (1.25, 1.15, 1.07, 1.0, 0.94, 0.88)
SKILL_SPEED_NONE = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
CHAT_MULTITASK = 0.2  # each chat already in hand stretches a new one by this much
VIP_SHARE = 0.1


@dataclass(frozen=True)
class SimAgent:
    """An agent of the simulated day: skills, capacity on their one channel, and shift."""

    id: int
    channel: str
    capacity: int
    skills: dict[str, int]
    shift_start: float
    shift_end: float


@dataclass(frozen=True)
class Scenario:
    """One simulated day: the agents and every arrival, fixed so each policy sees the same."""

    seed: int
    hours: float
    agents: tuple[SimAgent, ...]
    arrival_time: np.ndarray
    channel: np.ndarray  # index into CHANNELS
    language: np.ndarray  # index into LANGUAGES
    category: np.ndarray  # index into CATEGORIES
    value: np.ndarray
    base_handle: np.ndarray  # seconds, before skill and multitasking factors
    load_factor: float  # arrival rate multiplier the calibration settled on
    skill_speed: tuple[float, ...] = SKILL_SPEED
    chat_multitask: float = CHAT_MULTITASK
    sla_target: dict[str, float] = field(default_factory=lambda: dict(SLA_TARGET))

    @property
    def horizon(self) -> float:
        return self.hours * 3600.0

    def __len__(self) -> int:
        return len(self.arrival_time)


@dataclass(frozen=True)
class Result:
    """What one policy did with one scenario."""

    policy: str
    items: int
    answered: int
    mean_wait: float  # seconds
    p90_wait: float
    sla_attainment: float  # share answered within the channel's target wait
    occupancy: float  # busy slot-time / slot-time on shift, within the day
    skill_match: float  # mean level (0..5) of the handling agent in the item's category
    expert_share: float  # share handled by an agent at level >= 4 in the category
    mean_handle: float  # seconds, as handled
    vip_mean_wait: float
    by_channel: dict[str, dict[str, float]]
    decisions: int  # solve() calls
    solve_ms_mean: float  # mean wall time of one solve() call

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _make_agents(rng: np.random.Generator, n_chat: int, n_phone: int, horizon: float) -> list[SimAgent]:
    agents = []
    for idx in range(n_chat + n_phone):
        channel = "chat" if idx < n_chat else "phone"
        r = rng.random()
        langs = ["zh"] if r < 0.55 else ["en"] if r < 0.75 else ["zh", "en"]
        skills = {f"lang:{lang}": int(rng.integers(3, 6)) for lang in langs}
        order = rng.permutation(len(CATEGORIES))
        for rank, c in enumerate(order):
            level = (
                int(rng.integers(4, 6))
                if rank == 0
                else int(rng.integers(2, 4))
                if rank == 1
                else int(rng.integers(0, 2))
            )
            if level:
                skills[f"cat:{CATEGORIES[c]}"] = level
        group = idx % 4  # 0, 1: all day; 2: early; 3: late
        start, end = (
            (0.0, horizon) if group < 2 else (0.0, 0.6 * horizon) if group == 2 else (0.4 * horizon, horizon)
        )
        capacity = int(rng.choice([2, 3])) if channel == "chat" else 1
        agents.append(SimAgent(idx + 1, channel, capacity, skills, start, end))
    # every language can be answered on every channel by someone who stays to the end of the day
    for channel in CHANNELS:
        for lang in LANGUAGES:
            if not any(
                a.channel == channel and f"lang:{lang}" in a.skills and a.shift_end >= horizon for a in agents
            ):
                a = next(a for a in agents if a.channel == channel and a.shift_end >= horizon)
                a.skills[f"lang:{lang}"] = 3
    return agents


def _staffed_slots(agents: list[SimAgent], channel: str, t0: float, t1: float) -> float:
    """Mean slots on shift for a channel over [t0, t1)."""
    total = 0.0
    for a in agents:
        if a.channel == channel:
            total += a.capacity * max(0.0, min(a.shift_end, t1) - max(a.shift_start, t0))
    return total / (t1 - t0)


def _build(
    seed: int, hours: float, n_chat: int, n_phone: int, load_factor: float, skill_speed: tuple[float, ...]
) -> Scenario:
    horizon = hours * 3600.0
    rng = np.random.default_rng(seed)
    agents = _make_agents(rng, n_chat, n_phone, horizon)
    cuts = sorted(
        {0.0, horizon, *(a.shift_start for a in agents), *(min(a.shift_end, horizon) for a in agents)}
    )
    times, channels = [], []
    arrivals_rng = np.random.default_rng([seed, 1])
    for c, channel in enumerate(CHANNELS):
        for t0, t1 in zip(cuts, cuts[1:], strict=False):
            rate = load_factor * _staffed_slots(agents, channel, t0, t1) / MEAN_HANDLE[channel]
            n = arrivals_rng.poisson(rate * (t1 - t0))
            times.append(arrivals_rng.uniform(t0, t1, n))
            channels.append(np.full(n, c))
    arrival_time = np.concatenate(times)
    channel = np.concatenate(channels)
    order = np.argsort(arrival_time, kind="stable")
    arrival_time, channel = arrival_time[order], channel[order]
    n = len(arrival_time)
    attrs = np.random.default_rng([seed, 2])
    language = attrs.choice(len(LANGUAGES), size=n, p=LANGUAGE_MIX)
    category = attrs.choice(len(CATEGORIES), size=n, p=CATEGORY_MIX)
    value = np.where(attrs.random(n) < VIP_SHARE, 1.0, attrs.uniform(0.0, 0.4, n))
    mean = np.array([MEAN_HANDLE[CHANNELS[c]] for c in channel])
    # lognormal with the given mean: mu = ln(mean) - sigma^2 / 2
    base_handle = attrs.lognormal(np.log(mean) - HANDLE_SIGMA**2 / 2, HANDLE_SIGMA)
    return Scenario(
        seed=seed,
        hours=hours,
        agents=tuple(agents),
        arrival_time=arrival_time,
        channel=channel,
        language=language,
        category=category,
        value=value,
        base_handle=base_handle,
        load_factor=load_factor,
        skill_speed=tuple(skill_speed),
    )


def generate_scenario(
    seed: int = 1,
    occupancy: float = 0.85,
    *,
    hours: float = 8.0,
    n_chat: int = 30,
    n_phone: int = 20,
    calibrate_on: str | None = "round_robin",
    iterations: int = 6,
    skill_speed: tuple[float, ...] = SKILL_SPEED,
) -> Scenario:
    """A simulated day whose arrival rate puts `calibrate_on`'s measured occupancy at `occupancy`.

    The rate is scaled a few times (occupancy is close to linear in it below saturation) and the
    scenario of the last step is returned; its `load_factor` records the multiplier. With
    calibrate_on=None the rate is set from the mean handling time alone (the nominal load).
    """
    factor = occupancy
    scenario = _build(seed, hours, n_chat, n_phone, factor, skill_speed)
    if calibrate_on is None:
        return scenario
    for _ in range(iterations):
        measured = simulate(scenario, calibrate_on).occupancy
        if abs(measured - occupancy) < 0.005:
            break
        factor *= occupancy / measured
        scenario = _build(seed, hours, n_chat, n_phone, factor, skill_speed)
    return scenario


def simulate(scenario: Scenario, policy: str, weights: Weights | None = None) -> Result:
    """Run one policy through the scenario's day and measure it."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}")
    weights = weights or Weights()
    horizon = scenario.horizon
    agents = list(scenario.agents)
    n = len(scenario)
    lang_key = [f"lang:{lang}" for lang in LANGUAGES]
    cat_key = [f"cat:{c}" for c in CATEGORIES]
    load = [0] * len(agents)
    on_shift = [False] * len(agents)
    assigned_at = np.full(n, np.nan)
    level = np.zeros(n)
    handled = np.zeros(n)
    busy = 0.0
    state: dict = {}
    # events: (time, order, kind, index); kinds in the order they are handled at the same instant
    FINISH, SHIFT_END, SHIFT_START, ARRIVE = 0, 1, 2, 3
    events: list[tuple[float, int, int, int]] = []
    for i, t in enumerate(scenario.arrival_time):
        events.append((float(t), ARRIVE, i, i))
    for a, agent in enumerate(agents):
        events.append((agent.shift_start, SHIFT_START, a, a))
        if agent.shift_end < horizon:  # those who end with the day stay until the queue is empty
            events.append((agent.shift_end, SHIFT_END, a, a))
    heapq.heapify(events)
    waiting: list[int] = []
    solve_calls = 0
    solve_seconds = 0.0

    while events:
        now = events[0][0]
        while events and events[0][0] == now:
            _, kind, _, idx = heapq.heappop(events)
            if kind == ARRIVE:
                waiting.append(idx)
            elif kind == FINISH:
                load[idx] -= 1
            elif kind == SHIFT_START:
                on_shift[idx] = True
            else:
                on_shift[idx] = False
        if not waiting:
            continue
        free = [a for a, agent in enumerate(agents) if on_shift[a] and load[a] < agent.capacity]
        if not free:
            continue
        open_channels = {agents[a].channel for a in free}
        items = []
        for i in waiting:
            channel = CHANNELS[scenario.channel[i]]
            if channel not in open_channels:
                continue
            waited = now - scenario.arrival_time[i]
            items.append(
                ItemSpec(
                    id=i,
                    channel=channel,
                    skills={lang_key[scenario.language[i]]: 1},
                    preferred={cat_key[scenario.category[i]]: 3},
                    sla_seconds_left=scenario.sla_target[channel] - waited,
                    value=float(scenario.value[i]),
                    waited_seconds=waited,
                )
            )
        if not items:
            continue
        specs = [
            AgentSpec(
                id=a,
                skills=agents[a].skills,
                capacity={agents[a].channel: agents[a].capacity},
                load={agents[a].channel: load[a]},
            )
            for a in free
        ]
        started = time.perf_counter()
        decisions = solve(items, specs, weights, policy, state)
        solve_seconds += time.perf_counter() - started
        solve_calls += 1
        if not decisions:
            continue
        taken = set()
        for d in decisions:
            i, a = d.item_id, d.agent_id
            agent = agents[a]
            if load[a] >= agent.capacity:  # pragma: no cover - the engine never does this
                raise AssertionError(f"policy {policy} overfilled agent {a}")
            lvl = agent.skills.get(cat_key[scenario.category[i]], 0)
            duration = scenario.base_handle[i] * scenario.skill_speed[min(lvl, len(scenario.skill_speed) - 1)]
            if agent.channel == "chat":
                duration *= 1.0 + scenario.chat_multitask * load[a]
            load[a] += 1
            assigned_at[i] = now
            level[i] = lvl
            handled[i] = duration
            end = now + duration
            # busy slot-time counts within the agent's shift and the day
            busy += max(0.0, min(end, agent.shift_end, horizon) - max(now, agent.shift_start))
            heapq.heappush(events, (end, FINISH, a, a))
            taken.add(i)
        waiting = [i for i in waiting if i not in taken]

    available = sum(a.capacity * (min(a.shift_end, horizon) - a.shift_start) for a in agents)
    return _measure(
        scenario, policy, assigned_at, level, handled, busy / available, solve_calls, solve_seconds
    )


def _measure(scenario, policy, assigned_at, level, handled, occupancy, calls, seconds) -> Result:
    answered = ~np.isnan(assigned_at)
    wait = np.where(answered, assigned_at - scenario.arrival_time, np.inf)
    target = np.array([scenario.sla_target[CHANNELS[c]] for c in scenario.channel])

    def stats(mask: np.ndarray) -> dict[str, float]:
        w = wait[mask & answered]
        return {
            "items": int(mask.sum()),
            "mean_wait": float(w.mean()) if len(w) else math.nan,
            "p90_wait": float(np.percentile(w, 90)) if len(w) else math.nan,
            "sla_attainment": float((wait[mask] <= target[mask]).mean()) if mask.any() else math.nan,
            "skill_match": float(level[mask & answered].mean()) if (mask & answered).any() else math.nan,
        }

    everything = np.ones(len(scenario), dtype=bool)
    overall = stats(everything)
    return Result(
        policy=policy,
        items=len(scenario),
        answered=int(answered.sum()),
        mean_wait=overall["mean_wait"],
        p90_wait=overall["p90_wait"],
        sla_attainment=overall["sla_attainment"],
        occupancy=float(occupancy),
        skill_match=overall["skill_match"],
        expert_share=float((level[answered] >= 4).mean()),
        mean_handle=float(handled[answered].mean()),
        vip_mean_wait=stats(scenario.value >= 1.0)["mean_wait"],
        by_channel={ch: stats(scenario.channel == c) for c, ch in enumerate(CHANNELS)},
        decisions=calls,
        solve_ms_mean=1000.0 * seconds / calls if calls else 0.0,
    )


def compare(
    scenario: Scenario, policies: tuple[str, ...] = POLICIES, weights: Weights | None = None
) -> dict[str, Result]:
    """Every policy on the same scenario."""
    return {policy: simulate(scenario, policy, weights) for policy in policies}


def format_table(results: dict[str, Result], baseline: str = "round_robin") -> str:
    """The comparison as a Markdown table (waits in seconds), with the change against `baseline`."""
    base = results.get(baseline)
    lines = [
        "| policy | mean wait s | vs " + baseline + " | p90 wait s | SLA met | occupancy | skill match (0-5) "
        "| expert share | mean handle s | VIP mean wait s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for policy, r in results.items():
        change = f"{(r.mean_wait / base.mean_wait - 1) * 100:+.0f}%" if base and base.mean_wait > 0 else ""
        lines.append(
            f"| {policy} | {r.mean_wait:.1f} | {change} | {r.p90_wait:.1f} | {r.sla_attainment:.1%} | "
            f"{r.occupancy:.1%} | {r.skill_match:.2f} | {r.expert_share:.1%} | {r.mean_handle:.0f} | "
            f"{r.vip_mean_wait:.1f} |"
        )
    return "\n".join(lines)
