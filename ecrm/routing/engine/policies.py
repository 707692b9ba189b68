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
from scipy.sparse import coo_matrix, csc_matrix

from .scoring import BatchTerms, batch_terms, explain, is_feasible
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
        # each item an agent gets is explained at the load it brings (first, second, ... of the batch)
        # (the reasons are written when read: see Decision)
        given: dict[int, int] = defaultdict(int)
        item_type = terms.item_type.tolist()
        for i, a in pairs:
            agent, item, t = open_agents[a], channel_items[i], item_type[i]
            decisions.append(
                explain(
                    item,
                    agent,
                    weights,
                    policy="optimal",
                    extra_load=given[agent.id],
                    skill=terms.skill[t, a],
                )
            )
            given[agent.id] += 1
    return decisions


# The assignment's time grows like (smaller side)^2 x (larger side) on batches of look-alike items
# (0.3-1 ns per unit measured here); the flow's is 1-6 ms from a handful of items to a thousand.
# They cross at a few million units; the bar sits higher because a channel that joins another
# channel's flow in the same solver call costs less than a call of its own (measured on the
# 1,000-item bench batch: busy agents 15 ms with this bar, 17 ms with 4 M).
AUTO_ASSIGNMENT_WORK = 12_000_000


def _pick_method(n_items: int, n_slots: int) -> str:
    small, large = sorted((n_items, n_slots))
    return "assignment" if small * small * large <= AUTO_ASSIGNMENT_WORK else "flow"


def _slots(
    channel: str, agents: list[AgentSpec], n_items: int, weights: Weights
) -> tuple[np.ndarray, np.ndarray]:
    """(agent index, weighted load term) per free slot, agent by agent in order, slot k of an agent
    scored with load + k; an agent never needs more slots than there are items."""
    load = np.array([agent.load.get(channel, 0) for agent in agents])
    capacity = np.array([agent.capacity.get(channel, 0) for agent in agents])
    count = np.minimum(np.maximum(capacity - load, 0), n_items)
    slot_agent = np.repeat(np.arange(len(agents), dtype=np.intp), count)
    k = np.arange(len(slot_agent)) - np.repeat(np.cumsum(count) - count, count)
    slot_score = weights.load * (1.0 - (load[slot_agent] + k) / capacity[slot_agent])
    return slot_agent, slot_score


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
    programme.

    Per block the network is source -> item -> type -> agent -> slot -> sink. Variables: item taken
    through its type (0..1), flow type -> agent (>= 0), slot used (0..1), and for an item whose
    last agent is here, item taken straight to that agent (0..1, with the affinity bonus; at most
    one of the two ways per item). One conservation row per type and per agent. The matrix is a
    network matrix, so the simplex vertex HiGHS returns is integral.
    """
    parts: list[tuple] = []
    rewards, rows, cols, signs, uppers = [], [], [], [], []
    ub_rows, ub_cols = [], []
    n_rows = n_cols = n_ub = 0

    def add(reward, row, col, sign, upper):
        rewards.append(reward)
        rows.append(row)
        cols.append(col)
        signs.append(np.full(len(row), sign))
        uppers.append(upper)

    for terms, slot_agent, slot_score in blocks:
        n_types, n_agents = terms.type_feasible.shape
        item_type = terms.item_type
        # per type only its best items can be served through the type, at most as many as its
        # agents' free slots (an item with affinity keeps its own way in as well)
        slots_per_agent = np.bincount(slot_agent, minlength=n_agents)
        type_slots = terms.type_feasible.astype(np.intp) @ slots_per_agent
        order = np.lexsort((-terms.item_score, item_type))  # by type, best first
        starts = np.searchsorted(item_type[order], np.arange(n_types))
        rank = np.empty(len(item_type), dtype=np.intp)
        rank[order] = np.arange(len(order)) - np.repeat(starts, np.bincount(item_type, minlength=n_types))
        keep = rank < type_slots[item_type]
        keep[terms.affinity_item] = True
        keep_items = np.flatnonzero(keep)
        # per agent at most as many slots as items it could take
        agent_items = np.bincount(item_type[keep_items], minlength=n_types) @ terms.type_feasible
        slot_rank = np.arange(len(slot_agent)) - np.searchsorted(slot_agent, slot_agent)
        keep_slots = np.flatnonzero(slot_rank < agent_items[slot_agent])
        ft, fa = np.nonzero(terms.type_feasible)
        aff_i, aff_a = terms.affinity_item, terms.affinity_agent
        n_y, n_x, n_z, n_d = len(keep_items), len(ft), len(keep_slots), len(aff_i)
        y, x, z, d = n_cols, n_cols + n_y, n_cols + n_y + n_x, n_cols + n_y + n_x + n_z
        type_row, agent_row = n_rows, n_rows + n_types
        # an item taken through its type: +1 into the type's row
        add(
            terms.item_score[keep_items],
            type_row + item_type[keep_items],
            y + np.arange(n_y),
            1.0,
            np.ones(n_y),
        )
        # type -> agent: -1 out of the type, +1 into the agent
        add(terms.skill[ft, fa], type_row + ft, x + np.arange(n_x), -1.0, np.full(n_x, np.inf))
        add(np.zeros(n_x), agent_row + fa, x + np.arange(n_x), 1.0, np.zeros(0))
        # a slot used: -1 out of its agent
        add(
            slot_score[keep_slots], agent_row + slot_agent[keep_slots], z + np.arange(n_z), -1.0, np.ones(n_z)
        )
        # an item straight to its last agent: +1 into that agent, with the affinity bonus
        direct = terms.item_score[aff_i] + terms.skill[item_type[aff_i], aff_a] + terms.affinity_bonus
        add(direct, agent_row + aff_a, d + np.arange(n_d), 1.0, np.ones(n_d))
        # ... and not both ways: y_i + d_i <= 1
        position = np.full(len(item_type), -1)
        position[keep_items] = np.arange(n_y)
        ub_rows += [n_ub + np.arange(n_d), n_ub + np.arange(n_d)]
        ub_cols += [y + position[aff_i], d + np.arange(n_d)]
        parts.append((terms, keep_items, ft, fa, y, x, n_x, d))
        n_rows += n_types + n_agents
        n_cols += n_y + n_x + n_z + n_d
        n_ub += n_d
    if n_cols == 0:
        return [[] for _ in blocks]
    reward = np.zeros(n_cols)
    # the zero rewards of the agent-side entries of x overwrite nothing: add, do not assign
    for r, c in zip(rewards, cols, strict=True):
        np.add.at(reward, c, r)
    # one matrix: the conservation rows (= 0), then the "not both ways" rows (<= 1)
    ub_r = np.concatenate(ub_rows) if n_ub else np.zeros(0, dtype=np.intp)
    matrix = coo_matrix(
        (
            np.concatenate([*signs, np.ones(len(ub_r))]),
            (
                np.concatenate([*rows, n_rows + ub_r]),
                np.concatenate([*cols, *(ub_cols if n_ub else [])]),
            ),
        ),
        shape=(n_rows + n_ub, n_cols),
    )
    row_lower = np.concatenate([np.zeros(n_rows), np.full(n_ub, -np.inf)])
    row_upper = np.concatenate([np.zeros(n_rows), np.ones(n_ub)])
    upper = np.concatenate([u for u in uppers if len(u)])
    x_value = _maximise(reward, matrix, row_lower, row_upper, upper)
    solution = np.rint(x_value).astype(np.intp)

    out: list[list[tuple[int, int]]] = []
    for terms, keep_items, ft, fa, y, x, n_x, d in parts:
        pairs: list[tuple[int, int]] = []
        direct = solution[d : d + len(terms.affinity_item)] == 1
        for i, a in zip(terms.affinity_item[direct], terms.affinity_agent[direct], strict=True):
            pairs.append((int(i), int(a)))
        taken = keep_items[solution[y : y + len(keep_items)] == 1]
        flow = solution[x : x + n_x]
        # hand each type's taken items to the agents its flow goes to (all are equal to the agents)
        queue: dict[int, list[int]] = defaultdict(list)
        for i in taken:
            queue[int(terms.item_type[i])].append(int(i))
        used = flow > 0
        for t, a, f in zip(ft[used], fa[used], flow[used], strict=True):
            for _ in range(f):
                pairs.append((queue[int(t)].pop(), int(a)))
        out.append(pairs)
    return out


def _maximise(reward, matrix, row_lower, row_upper, upper) -> np.ndarray:
    """max reward @ x  s.t.  row_lower <= matrix @ x <= row_upper,  0 <= x <= upper  (dual simplex).

    Calls HiGHS through scipy's bundled binding when it is there: `linprog` wraps the same call
    but then walks every column in Python to build bound multipliers we do not use (~10 ms on a
    batch of 1,000 items). scipy is pinned; if the private binding ever moves, `linprog` is used.
    """
    csc = csc_matrix(matrix)
    try:
        from scipy.optimize._highspy import _core as highs_core
    except ImportError:  # pragma: no cover - depends on the scipy build
        highs_core = None
    if highs_core is not None:
        lp = highs_core.HighsLp()
        lp.num_col_ = csc.shape[1]
        lp.num_row_ = csc.shape[0]
        lp.a_matrix_.num_col_ = csc.shape[1]
        lp.a_matrix_.num_row_ = csc.shape[0]
        lp.a_matrix_.format_ = highs_core.MatrixFormat.kColwise
        lp.a_matrix_.start_ = csc.indptr
        lp.a_matrix_.index_ = csc.indices
        lp.a_matrix_.value_ = csc.data
        lp.col_cost_ = -np.asarray(reward, dtype=float)
        lp.col_lower_ = np.zeros(csc.shape[1])
        lp.col_upper_ = np.asarray(upper, dtype=float)
        lp.row_lower_ = np.asarray(row_lower, dtype=float)
        lp.row_upper_ = np.asarray(row_upper, dtype=float)
        solver = highs_core._Highs()
        options = highs_core.HighsOptions()
        options.output_flag = False
        options.log_to_console = False
        options.presolve = "off"  # finds little in a network matrix and costs ~10% here
        options.solver = "simplex"
        options.simplex_strategy = 1  # dual
        solver.passOptions(options)
        solver.passModel(lp)
        solver.run()
        if solver.getModelStatus() != highs_core.HighsModelStatus.kOptimal:  # pragma: no cover
            raise RuntimeError(
                f"routing flow solve failed: {solver.modelStatusToString(solver.getModelStatus())}"
            )
        return np.asarray(solver.getSolution().col_value)
    eq = row_lower == row_upper
    result = linprog(
        -np.asarray(reward),
        A_ub=csc[~eq] if (~eq).any() else None,
        b_ub=row_upper[~eq] if (~eq).any() else None,
        A_eq=csc[eq],
        b_eq=row_upper[eq],
        bounds=np.column_stack([np.zeros(len(upper)), upper]),
        method="highs-ds",
        options={"presolve": False},
    )
    if result.status != 0:  # pragma: no cover
        raise RuntimeError(f"routing flow solve failed: {result.message}")
    return result.x


class _Loads:
    """Per-channel capacity and load arrays over a list of agents, updated as a batch hands out work."""

    def __init__(self, agents: list[AgentSpec], channels: set[str]) -> None:
        self.capacity = {ch: np.array([a.capacity.get(ch, 0) for a in agents]) for ch in channels}
        self.used = {ch: np.array([a.load.get(ch, 0) for a in agents]) for ch in channels}
        self.given = {ch: np.zeros(len(agents), dtype=np.intp) for ch in channels}
        self.total_capacity = np.array([sum(a.capacity.values()) for a in agents], dtype=float)
        self.total_used = np.array([sum(a.load.values()) for a in agents], dtype=float)

    def open(self, channel: str) -> np.ndarray:
        return self.used[channel] < self.capacity[channel]

    def take(self, channel: str, a: int) -> int:
        """Record one more item for agent a; returns how many it had already got in this batch."""
        before = int(self.given[channel][a])
        self.given[channel][a] += 1
        self.used[channel][a] += 1
        self.total_used[a] += 1
        return before


def _round_robin(
    items: list[ItemSpec], agents: list[AgentSpec], weights: Weights, state: dict
) -> list[Decision]:
    """Items in queue order, each to the next agent in id order (after the last one served, kept in
    state["round_robin_last"]) who has the skills and a free slot on the item's channel."""
    ordered = sorted(agents, key=lambda a: a.id)
    ids = [a.id for a in ordered]
    feasible = _feasibility(items, ordered, weights)
    loads = _Loads(ordered, {it.channel for it in items})
    last = state.get("round_robin_last")
    decisions: list[Decision] = []
    for i in _queue_positions(items):
        item = items[i]
        candidates = np.flatnonzero(feasible[i] & loads.open(item.channel))
        if not len(candidates):
            continue
        start = bisect.bisect_right(ids, last) if last is not None else 0
        pos = int(np.searchsorted(candidates, start))
        a = int(candidates[pos] if pos < len(candidates) else candidates[0])
        extra = loads.take(item.channel, a)
        decisions.append(explain(item, ordered[a], weights, policy="round_robin", extra_load=extra))
        last = ids[a]
    state["round_robin_last"] = last
    return decisions


def _least_loaded(items: list[ItemSpec], agents: list[AgentSpec], weights: Weights) -> list[Decision]:
    """Items in queue order, each to the feasible agent with the lowest load/capacity on its channel
    (ties: lowest load over all channels, then lowest id)."""
    ordered = sorted(agents, key=lambda a: a.id)
    feasible = _feasibility(items, ordered, weights)
    loads = _Loads(ordered, {it.channel for it in items})
    decisions: list[Decision] = []
    for i in _queue_positions(items):
        item = items[i]
        ch = item.channel
        candidates = np.flatnonzero(feasible[i] & loads.open(ch))
        if not len(candidates):
            continue
        ratio = loads.used[ch][candidates] / loads.capacity[ch][candidates]
        total = loads.total_used[candidates] / np.maximum(loads.total_capacity[candidates], 1.0)
        # lexsort: last key first; candidates are in id order, so the first of a tie has the lowest id
        a = int(candidates[np.lexsort((total, ratio))[0]])
        extra = loads.take(ch, a)
        decisions.append(explain(item, ordered[a], weights, policy="least_loaded", extra_load=extra))
    return decisions


def _feasibility(items: list[ItemSpec], agents: list[AgentSpec], weights: Weights) -> np.ndarray:
    """items x agents: the agent has every skill the item requires (capacity aside)."""
    return batch_terms(items, agents, weights).feasible()


def _queue_positions(items: list[ItemSpec]) -> list[int]:
    return sorted(
        range(len(items)), key=lambda i: (-items[i].priority, -items[i].waited_seconds, items[i].id)
    )
