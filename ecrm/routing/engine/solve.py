"""The assignment policies: the optimal batch solve, round-robin and least-loaded.

Every policy obeys the same two hard limits: an item goes only to an agent with each required
skill at the required level, and no agent gets more items on a channel than its free capacity
there. Items with no feasible agent are left out of the result (they keep waiting).
"""

from __future__ import annotations

import bisect
from collections import defaultdict

import numpy as np
from scipy.optimize import linear_sum_assignment

from .scoring import explain, is_feasible, load_factor, pair_matrix
from .types import POLICIES, AgentSpec, Decision, ItemSpec, Weights


def solve(
    items: list[ItemSpec],
    agents: list[AgentSpec],
    weights: Weights = Weights(),  # noqa: B008 - frozen dataclass, safe as a default
    policy: str = "optimal",
    state: dict | None = None,
) -> list[Decision]:
    """Assign waiting `items` to `agents` with `policy` (one of POLICIES).

    `state` is a small dict the caller keeps between calls (round-robin stores its cursor there);
    it is updated in place. Returns one Decision per assigned item, in queue order.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; expected one of {', '.join(POLICIES)}")
    if not items or not agents:
        return []
    if policy == "optimal":
        decisions = _optimal(items, agents, weights)
    elif policy == "round_robin":
        decisions = _round_robin(items, agents, weights, state if state is not None else {})
    else:
        decisions = _least_loaded(items, agents, weights)
    rank = {item.id: r for r, item in enumerate(queue_order(items))}
    decisions.sort(key=lambda d: rank[d.item_id])
    return decisions


def score(
    item: ItemSpec,
    agent: AgentSpec,
    weights: Weights = Weights(),  # noqa: B008
    *,
    policy: str = "manual",
    check_capacity: bool = True,
) -> Decision | None:
    """The decision (score, factors, reasons) for giving `item` to `agent` at its current load, or
    None when the agent lacks a required skill (or, with check_capacity, has no free slot)."""
    if not is_feasible(item, agent):
        return None
    if check_capacity and agent.free(item.channel) <= 0:
        return None
    return explain(item, agent, weights, policy=policy)


def queue_order(items: list[ItemSpec]) -> list[ItemSpec]:
    """Queue order: higher priority first, then the one that has waited longest, then by id."""
    return sorted(items, key=lambda it: (-it.priority, -it.waited_seconds, it.id))


def _optimal(items: list[ItemSpec], agents: list[AgentSpec], weights: Weights) -> list[Decision]:
    """Maximise the batch's total score with one linear assignment per channel over capacity slots.

    Each agent contributes one column per free slot on the channel; slot k is scored with the load
    the agent would have when taking it (load + k), so filling an agent's third slot is worth less
    than someone else's first and work spreads. Infeasible pairs score 0 and every feasible pair
    scores >= BASE > 0, so a maximum of the full rectangular assignment is a maximum-weight matching
    once the zero pairs are dropped (a filler pair adds nothing a real one could not beat).
    """
    by_channel: dict[str, list[ItemSpec]] = defaultdict(list)
    for item in items:
        by_channel[item.channel].append(item)
    decisions: list[Decision] = []
    for channel, channel_items in by_channel.items():
        open_agents = [a for a in agents if a.free(channel) > 0]
        if not open_agents:
            continue
        pair, feasible = pair_matrix(channel_items, open_agents, weights)
        # an agent never needs more slots than there are items
        slot_agent: list[int] = []
        slot_load: list[float] = []
        slot_rank: list[int] = []
        for a, agent in enumerate(open_agents):
            load, capacity = agent.load.get(channel, 0), agent.capacity[channel]
            for k in range(min(agent.free(channel), len(channel_items))):
                slot_agent.append(a)
                slot_load.append(load_factor(load + k, capacity))
                slot_rank.append(k)
        cols = np.asarray(slot_agent)
        matrix = pair[:, cols] + weights.load * np.asarray(slot_load)[None, :]
        ok = feasible[:, cols]
        matrix[~ok] = 0.0
        rows, chosen = linear_sum_assignment(matrix, maximize=True)
        taken = ok[rows, chosen]
        # slots of one agent are interchangeable but for the load term, so the solver fills them in
        # order; count per agent anyway so the explanation shows the load each item really gets.
        given: dict[int, int] = defaultdict(int)
        for i, s in sorted(zip(rows[taken], chosen[taken], strict=True), key=lambda p: slot_rank[p[1]]):
            agent = open_agents[slot_agent[s]]
            decisions.append(
                explain(channel_items[i], agent, weights, policy="optimal", extra_load=given[agent.id])
            )
            given[agent.id] += 1
    return decisions


def _round_robin(
    items: list[ItemSpec], agents: list[AgentSpec], weights: Weights, state: dict
) -> list[Decision]:
    """Items in queue order, each to the next agent in id order (after the last one served, kept in
    state["round_robin_last"]) who has the skills and a free slot on the item's channel."""
    ordered = sorted(agents, key=lambda a: a.id)
    ids = [a.id for a in ordered]
    extra: dict[tuple[int, str], int] = defaultdict(int)
    last = state.get("round_robin_last")
    decisions: list[Decision] = []
    for item in queue_order(items):
        start = bisect.bisect_right(ids, last) if last is not None else 0
        for step in range(len(ordered)):
            agent = ordered[(start + step) % len(ordered)]
            if agent.free(item.channel) - extra[agent.id, item.channel] > 0 and is_feasible(item, agent):
                decisions.append(
                    explain(
                        item, agent, weights, policy="round_robin", extra_load=extra[agent.id, item.channel]
                    )
                )
                extra[agent.id, item.channel] += 1
                last = agent.id
                break
    state["round_robin_last"] = last
    return decisions


def _least_loaded(items: list[ItemSpec], agents: list[AgentSpec], weights: Weights) -> list[Decision]:
    """Items in queue order, each to the feasible agent with the lowest load/capacity on its channel
    (ties: lowest load over all channels, then lowest id)."""
    extra: dict[tuple[int, str], int] = defaultdict(int)
    decisions: list[Decision] = []

    def total_ratio(agent: AgentSpec) -> float:
        cap = sum(agent.capacity.values())
        used = sum(agent.load.values()) + sum(v for (a, _), v in extra.items() if a == agent.id)
        return used / cap if cap else 1.0

    for item in queue_order(items):
        best: tuple[float, float, int] | None = None
        best_agent: AgentSpec | None = None
        ch = item.channel
        for agent in agents:
            capacity = agent.capacity.get(ch, 0)
            used = agent.load.get(ch, 0) + extra[agent.id, ch]
            if used >= capacity or not is_feasible(item, agent):
                continue
            key = (used / capacity, total_ratio(agent), agent.id)
            if best is None or key < best:
                best, best_agent = key, agent
        if best_agent is not None:
            decisions.append(
                explain(item, best_agent, weights, policy="least_loaded", extra_load=extra[best_agent.id, ch])
            )
            extra[best_agent.id, ch] += 1
    return decisions
