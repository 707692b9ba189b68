"""The assignment policies: the optimal batch solve, round-robin and least-loaded.

Every policy obeys the same two hard limits: an item goes only to an agent with each required
skill at the required level, and no agent gets more items on a channel than its free capacity
there. Items with no feasible agent are left out of the result (they keep waiting).
"""

from __future__ import annotations

import bisect
from collections import defaultdict

import numpy as np
from scipy.optimize import linear_sum_assignment, linprog
from scipy.sparse import coo_matrix

from .scoring import BatchTerms, batch_terms, explain, is_feasible, load_factor
from .types import POLICIES, AgentSpec, Decision, ItemSpec, Weights


def solve(
    items: list[ItemSpec],
    agents: list[AgentSpec],
    weights: Weights = Weights(),  # noqa: B008 - frozen dataclass, safe as a default
    policy: str = "optimal",
    state: dict | None = None,
    *,
    method: str = "auto",
) -> list[Decision]:
    """Assign waiting `items` to `agents` with `policy` (one of POLICIES).

    `state` is a small dict the caller keeps between calls (round-robin stores its cursor there);
    it is updated in place. Returns one Decision per assigned item, in queue order. `method` picks
    the exact solver of the optimal policy ("auto", "assignment" or "flow"; see `_optimal`).
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; expected one of {', '.join(POLICIES)}")
    if not items or not agents:
        return []
    if policy == "optimal":
        decisions = _optimal(items, agents, weights, method)
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


def _optimal(
    items: list[ItemSpec], agents: list[AgentSpec], weights: Weights, method: str = "auto"
) -> list[Decision]:
    """Maximise the batch's total score, one channel at a time (capacity is per channel).

    Each agent offers its free slots on the channel; slot k is scored with the load the agent would
    have when taking it (load + k), so an agent's third chat is worth less than someone else's first
    and work spreads. Two exact solvers give the same optimum (a test checks they agree):

    - "assignment": scipy's linear_sum_assignment over items x slots. Fast on small batches, slow
      on big ones whose items look alike (the augmenting paths get long).
    - "flow": the same problem as a min-cost flow, source -> item -> item type -> agent -> slot ->
      sink, solved as a linear programme with HiGHS (network matrices give integral vertices).
      Items that look the same to every agent share one type, so the middle layer is types x agents
      instead of items x slots.

    "auto" picks per channel by the size of the batch (see `_pick_method`).
    """
    by_channel: dict[str, list[ItemSpec]] = defaultdict(list)
    for item in items:
        by_channel[item.channel].append(item)
    blocks: list[tuple[list[ItemSpec], list[AgentSpec], BatchTerms, np.ndarray, np.ndarray]] = []
    for channel, channel_items in by_channel.items():
        open_agents = [a for a in agents if a.free(channel) > 0]
        if open_agents:
            terms = batch_terms(channel_items, open_agents, weights)
            slot_agent, slot_score = _slots(channel, open_agents, len(channel_items), weights)
            blocks.append((channel_items, open_agents, terms, slot_agent, slot_score))
    if method not in ("auto", "assignment", "flow"):
        raise ValueError(f"unknown method {method!r}")
    chosen = [method if method != "auto" else _pick_method(len(b[0]), len(b[3])) for b in blocks]
    all_pairs: list[list[tuple[int, int]]] = [[] for _ in blocks]
    flow_blocks = [k for k, m in enumerate(chosen) if m == "flow"]
    # all the flow blocks go into one linear programme (one solver call's overhead)
    for k, pairs in zip(flow_blocks, _solve_flow([blocks[k][2:] for k in flow_blocks]), strict=True):
        all_pairs[k] = pairs
    for k, m in enumerate(chosen):
        if m == "assignment":
            all_pairs[k] = _solve_assignment(*blocks[k][2:])

    decisions: list[Decision] = []
    for (channel_items, open_agents, terms, _, _), pairs in zip(blocks, all_pairs, strict=True):
        # explain in slot order per agent so each reason shows the load the item really gets
        given: dict[int, int] = defaultdict(int)
        for i, a in pairs:
            agent = open_agents[a]
            decisions.append(
                explain(
                    channel_items[i],
                    agent,
                    weights,
                    policy="optimal",
                    extra_load=given[agent.id],
                    skill=terms.skill[terms.item_type[i], a],
                )
            )
            given[agent.id] += 1
    return decisions


# The assignment's work grows like (smaller side)^2 x (larger side) on batches of look-alike items
# (about 0.5 ns per unit measured here); the flow costs a roughly fixed ~5-10 ms for the solver
# call. Below this many units the assignment is the faster of the two.
AUTO_ASSIGNMENT_WORK = 12_000_000


def _pick_method(n_items: int, n_slots: int) -> str:
    small, large = sorted((n_items, n_slots))
    return "assignment" if small * small * large <= AUTO_ASSIGNMENT_WORK else "flow"


def _slots(
    channel: str, agents: list[AgentSpec], n_items: int, weights: Weights
) -> tuple[np.ndarray, np.ndarray]:
    """(agent index, weighted load term) per free slot; an agent never needs more slots than items."""
    slot_agent: list[int] = []
    slot_score: list[float] = []
    for a, agent in enumerate(agents):
        load, capacity = agent.load.get(channel, 0), agent.capacity[channel]
        for k in range(min(agent.free(channel), n_items)):
            slot_agent.append(a)
            slot_score.append(weights.load * load_factor(load + k, capacity))
    return np.asarray(slot_agent, dtype=np.intp), np.asarray(slot_score)


def _solve_assignment(
    terms: BatchTerms, slot_agent: np.ndarray, slot_score: np.ndarray
) -> list[tuple[int, int]]:
    """(item, agent) pairs of a maximum-weight matching, by linear_sum_assignment over item x slot.

    Infeasible pairs score 0 and every feasible pair scores >= BASE > 0, so the optimum of the full
    rectangular assignment is a maximum-weight matching once the zero pairs are dropped: a filler
    pair adds nothing that leaving the item unassigned would not.
    """
    ok = terms.feasible()[:, slot_agent]
    matrix = terms.pair_score()[:, slot_agent] + slot_score[None, :]
    matrix[~ok] = 0.0
    rows, cols = linear_sum_assignment(matrix, maximize=True)
    taken = ok[rows, cols]
    return [(int(i), int(slot_agent[s])) for i, s in zip(rows[taken], cols[taken], strict=True)]


def _solve_flow(
    blocks: list[tuple[BatchTerms, np.ndarray, np.ndarray]],
) -> list[list[tuple[int, int]]]:
    """(item, agent) pairs of a maximum-weight flow per block (channel), all blocks in one linear
    programme. Variables: item taken (0..1), flow type -> agent (>= 0), slot used (0..1); one
    conservation row per type and per agent."""
    parts: list[tuple] = []
    rewards, rows, cols, uppers = [], [], [], []
    n_rows = n_cols = 0
    for terms, slot_agent, slot_score in blocks:
        n_types, n_agents = terms.type_feasible.shape
        item_type = terms.item_type
        # per type only its best items can be served, at most as many as its agents' free slots
        slots_per_agent = np.bincount(slot_agent, minlength=n_agents)
        type_slots = terms.type_feasible.astype(np.intp) @ slots_per_agent
        order = np.lexsort((-terms.item_score, item_type))  # by type, best first
        starts = np.searchsorted(item_type[order], np.arange(n_types))
        rank = np.empty(len(item_type), dtype=np.intp)
        rank[order] = np.arange(len(order)) - np.repeat(starts, np.bincount(item_type, minlength=n_types))
        keep_items = np.flatnonzero(rank < type_slots[item_type])
        # per agent at most as many slots as items it could take
        agent_items = np.bincount(item_type[keep_items], minlength=n_types) @ terms.type_feasible
        slot_rank = np.arange(len(slot_agent)) - np.searchsorted(slot_agent, slot_agent)
        keep_slots = np.flatnonzero(slot_rank < agent_items[slot_agent])
        ft, fa = np.nonzero(terms.type_feasible)
        n_y, n_x, n_z = len(keep_items), len(ft), len(keep_slots)
        y, x, z = n_cols, n_cols + n_y, n_cols + n_y + n_x
        rewards += [terms.item_score[keep_items], terms.type_score[ft, fa], slot_score[keep_slots]]
        uppers += [np.ones(n_y), np.full(n_x, np.inf), np.ones(n_z)]
        # +1 into a type's row for each item taken, -1 for each unit it sends to an agent;
        # +1 into an agent's row per unit received, -1 per slot used
        rows += [
            n_rows + item_type[keep_items],
            n_rows + ft,
            n_rows + n_types + fa,
            n_rows + n_types + slot_agent[keep_slots],
        ]
        cols += [y + np.arange(n_y), x + np.arange(n_x), x + np.arange(n_x), z + np.arange(n_z)]
        parts.append((terms, keep_items, ft, fa, y, x, n_x))
        n_rows += n_types + n_agents
        n_cols += n_y + n_x + n_z
    if n_cols == 0:
        return [[] for _ in blocks]
    row = np.concatenate(rows)
    vals = np.ones(len(row))
    # the coefficients of the "out" entries (items' flow out of a type, slots out of an agent) are -1
    sign_at = np.cumsum([0] + [len(r) for r in rows])
    for k in range(1, len(rows), 2):
        vals[sign_at[k] : sign_at[k + 1]] = -1.0
    a_eq = coo_matrix((vals, (row, np.concatenate(cols))), shape=(n_rows, n_cols)).tocsr()
    bounds = np.zeros((n_cols, 2))
    bounds[:, 1] = np.concatenate(uppers)
    result = linprog(
        -np.concatenate(rewards),
        A_eq=a_eq,
        b_eq=np.zeros(n_rows),
        bounds=bounds,
        method="highs-ds",
        # presolve finds little to remove in a network matrix and costs ~10% here
        options={"presolve": False},
    )
    if result.status != 0:  # pragma: no cover - the flow problem is always feasible (all zeros)
        raise RuntimeError(f"routing flow solve failed: {result.message}")
    solution = np.rint(result.x).astype(np.intp)

    out: list[list[tuple[int, int]]] = []
    for terms, keep_items, ft, fa, y, x, n_x in parts:
        taken = keep_items[solution[y : y + len(keep_items)] == 1]
        flow = solution[x : x + n_x]
        # hand each type's taken items to the agents its flow goes to (all are equal to the agents)
        queue: dict[int, list[int]] = defaultdict(list)
        for i in taken:
            queue[int(terms.item_type[i])].append(int(i))
        pairs: list[tuple[int, int]] = []
        used = flow > 0
        for t, a, f in zip(ft[used], fa[used], flow[used], strict=True):
            for _ in range(f):
                pairs.append((queue[int(t)].pop(), int(a)))
        out.append(pairs)
    return out


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
