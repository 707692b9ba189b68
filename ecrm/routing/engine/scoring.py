"""Scoring an (item, agent) pair: each factor scaled to 0..1, weighted, plus the reasons a person reads.

The same definitions are used twice: `pair_matrix` computes them for a whole batch with numpy (the
solve), and `explain` recomputes them for the few pairs actually chosen, with words attached.

Factors (each 0..1 before weighting):

- skill: mean of level/5 over the item's required and preferred skills (0 if the agent lacks a
  preferred one; a missing required one makes the pair infeasible, not just low).
- load: the share of the agent's capacity on the item's channel still free before taking it, so
  the first free slot of an idle agent scores 1 and the last slot of a nearly full one close to 0.
- urgency: 1 when the SLA is breached, 1/(1 + t/300 s) with t seconds left (5 min left = 0.5).
- value: the customer's value as given (VIP = 1).
- affinity: 1 if the agent last helped this customer.
- wait: w/(w + 300 s) for w seconds waited (5 min = 0.5).
- priority: p/(p + 1) for queue priority p > 0.

A feasible pair always scores at least BASE (> 0): the batch solve relies on that to tell a real
assignment from a filler one, and it makes "assign one more item" worth more than any reshuffle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .types import AgentSpec, Decision, ItemSpec, Weights

BASE = 1.0
URGENCY_SCALE = 300.0
WAIT_SCALE = 300.0
MAX_LEVEL = 5

# how a channel's items are counted in a reason ("2 of 3 chats")
CHANNEL_NOUNS = {
    "chat": "chats",
    "email": "emails",
    "phone": "calls",
    "callback": "callbacks",
    "ticket": "tickets",
}


def is_feasible(item: ItemSpec, agent: AgentSpec) -> bool:
    """The agent has every required skill at the required level (capacity is checked separately)."""
    return all(agent.skills.get(skill, 0) >= level for skill, level in item.skills.items())


def urgency_factor(sla_seconds_left: float | None) -> float:
    if sla_seconds_left is None:
        return 0.0
    if sla_seconds_left <= 0:
        return 1.0
    return 1.0 / (1.0 + sla_seconds_left / URGENCY_SCALE)


def wait_factor(waited_seconds: float) -> float:
    w = max(0.0, waited_seconds)
    return w / (w + WAIT_SCALE)


def priority_factor(priority: int) -> float:
    return priority / (priority + 1.0) if priority > 0 else 0.0


def value_factor(value: float) -> float:
    return min(1.0, max(0.0, float(value)))


def skill_factor(item: ItemSpec, agent: AgentSpec) -> float:
    keys = set(item.skills) | set(item.preferred)
    if not keys:
        return 0.0
    return sum(min(agent.skills.get(k, 0), MAX_LEVEL) for k in keys) / (MAX_LEVEL * len(keys))


def load_factor(load: int, capacity: int) -> float:
    return 1.0 - load / capacity if capacity > 0 else 0.0


def item_terms(item: ItemSpec, weights: Weights) -> dict[str, float]:
    """The weighted factors that depend on the item alone (they decide who wins scarce slots)."""
    return {
        "urgency": weights.urgency * urgency_factor(item.sla_seconds_left),
        "value": weights.value * value_factor(item.value),
        "wait": weights.wait * wait_factor(item.waited_seconds),
        "priority": weights.priority * priority_factor(item.priority),
    }


def explain(
    item: ItemSpec,
    agent: AgentSpec,
    weights: Weights,
    *,
    policy: str,
    extra_load: int = 0,
    skill: float | None = None,
    skill_reasons: list[str] | None = None,
) -> Decision:
    """The decision to give `item` to `agent` when `extra_load` more items of its channel were already
    given to the agent in this batch: the weighted factors, the total score and the reasons.
    `skill` (the weighted skill factor) and `skill_reasons` (`reasons_for_skills`) may be passed
    when the caller has them already: the batch solve computes them once per item type and agent."""
    channel = item.channel
    load = agent.load.get(channel, 0) + extra_load
    capacity = agent.capacity.get(channel, 0)
    # written out rather than through the helpers: this runs once per assigned item
    sla = item.sla_seconds_left
    wait = item.waited_seconds if item.waited_seconds > 0 else 0.0
    value = item.value if item.value < 1.0 else 1.0
    factors = {
        "skill": round(weights.skill * skill_factor(item, agent) if skill is None else float(skill), 6),
        "load": round(weights.load * (1.0 - load / capacity) if capacity > 0 else 0.0, 6),
        "affinity": weights.affinity if item.last_agent_id == agent.id else 0.0,
        "urgency": round(weights.urgency * urgency_factor(sla), 6) if sla is not None else 0.0,
        "value": round(weights.value * value, 6) if value > 0 else 0.0,
        "wait": round(weights.wait * wait / (wait + WAIT_SCALE), 6) if wait else 0.0,
        "priority": round(weights.priority * item.priority / (item.priority + 1.0), 6)
        if item.priority > 0
        else 0.0,
    }
    return Decision(
        item_id=item.id,
        agent_id=agent.id,
        score=round(BASE + sum(factors.values()), 6),
        factors=factors,
        policy=policy,
        reasons_source=lambda: reasons(
            item, agent, load=load, capacity=capacity, skill_reasons=skill_reasons
        ),
    )


def _skill_reason(skill: str, level: int) -> str:
    kind, _, name = skill.partition(":")
    if not name:
        kind, name = "", skill
    name = name.replace("_", " ")
    if kind == "lang":
        return f"speaks {name}"
    return f"{name} skill {min(level, MAX_LEVEL)}/{MAX_LEVEL}"


def _minutes(seconds: float) -> str:
    minutes = seconds / 60.0
    if minutes < 1:
        return "<1 min"
    return f"{math.floor(minutes)} min"


def reasons_for_skills(item: ItemSpec, agent: AgentSpec) -> list[str]:
    """The skill part of the reasons: languages first, then the other skills (required before
    preferred), each the agent has."""
    out: list[str] = []
    levels = agent.skills
    keys = list(item.skills)
    keys += [k for k in item.preferred if k not in item.skills]
    for key in keys:
        if key.startswith("lang:") and levels.get(key, 0) > 0:
            out.append("speaks " + key[5:].replace("_", " "))
    for key in keys:
        if not key.startswith("lang:"):
            level = levels.get(key, 0)
            if level > 0:
                out.append(_skill_reason(key, level))
    return out


def reasons(
    item: ItemSpec, agent: AgentSpec, *, load: int, capacity: int, skill_reasons: list[str] | None = None
) -> list[str]:
    """Short plain-English fragments, built from data, in a fixed order: languages, other skills,
    load, affinity, customer value, SLA, wait, priority. Only factors that apply are mentioned."""
    out = list(skill_reasons) if skill_reasons is not None else reasons_for_skills(item, agent)
    out.append(f"{load + 1} of {capacity} {CHANNEL_NOUNS.get(item.channel) or item.channel + ' items'}")
    if item.last_agent_id is not None and item.last_agent_id == agent.id:
        out.append("helped this customer before")
    if item.value >= 1.0:
        out.append("VIP customer")
    elif item.value >= 0.5:
        out.append("high-value customer")
    sla = item.sla_seconds_left
    if sla is not None:
        out.append(f"SLA breached {_minutes(-sla)} ago" if sla <= 0 else f"{_minutes(sla)} to SLA breach")
    if item.waited_seconds >= 60:
        out.append(f"waiting {_minutes(item.waited_seconds)}")
    if item.priority > 0:
        out.append(f"priority {item.priority} queue")
    return out


@dataclass
class BatchTerms:
    """One channel's batch, scored: items grouped into types that look the same to every agent.

    Items with the same required and preferred skills get the same skill term from each agent, so
    that is computed per type (types x agents); the item's own terms (urgency, value, wait,
    priority, plus BASE) per item; and affinity, which concerns one agent per item, as a short
    list of (item, agent) bonuses, so that it does not split types.
    """

    item_score: np.ndarray  # (items,) BASE + the item-only weighted factors
    item_type: np.ndarray  # (items,) index into the type axis
    skill: np.ndarray  # (types, agents) weighted skill factor
    type_feasible: np.ndarray  # (types, agents) bool: the agent has every required skill level
    affinity_item: np.ndarray  # items whose last agent is in the batch and may take them
    affinity_agent: np.ndarray  # that agent (index into the batch's agents)
    affinity_bonus: float  # the weighted affinity factor

    def pair_score(self) -> np.ndarray:
        """Score without the load term, items x agents (for the dense solve and the tests)."""
        score = self.item_score[:, None] + self.skill[self.item_type]
        score[self.affinity_item, self.affinity_agent] += self.affinity_bonus
        return score

    def feasible(self) -> np.ndarray:
        return self.type_feasible[self.item_type]


def batch_terms(items: list[ItemSpec], agents: list[AgentSpec], weights: Weights) -> BatchTerms:
    """Vectorised scoring of one channel's items against agents; matches `explain` (a test checks it)."""
    agent_index = {agent.id: a for a, agent in enumerate(agents)}
    type_of: dict[tuple, int] = {}
    examples: list[ItemSpec] = []
    types: list[int] = []
    for item in items:
        skills, preferred = item.skills, item.preferred
        key = (
            tuple(sorted(skills.items())) if len(skills) > 1 else tuple(skills.items()),
            tuple(sorted(preferred)) if len(preferred) > 1 else tuple(preferred),
        )
        t = type_of.get(key)
        if t is None:
            t = type_of[key] = len(examples)
            examples.append(item)
        types.append(t)
    item_type = np.array(types, dtype=np.intp)
    sla = np.array(
        [np.nan if it.sla_seconds_left is None else it.sla_seconds_left for it in items], dtype=float
    )
    value = np.array([it.value for it in items], dtype=float)
    wait = np.maximum(np.array([it.waited_seconds for it in items], dtype=float), 0.0)
    priority = np.maximum(np.array([it.priority for it in items], dtype=float), 0.0)
    with np.errstate(invalid="ignore"):
        urgency = np.where(
            np.isnan(sla), 0.0, np.where(sla <= 0, 1.0, 1.0 / (1.0 + np.maximum(sla, 0) / URGENCY_SCALE))
        )
    aff_item: list[int] = []
    aff_agent: list[int] = []
    for i, item in enumerate(items):
        if item.last_agent_id is not None:
            a = agent_index.get(item.last_agent_id)
            if a is not None:
                aff_item.append(i)
                aff_agent.append(a)
    item_score = (
        BASE
        + weights.urgency * urgency
        + weights.value * np.clip(value, 0.0, 1.0)
        + weights.wait * wait / (wait + WAIT_SCALE)
        + weights.priority * priority / (priority + 1.0)
    )

    keys = sorted({k for it in examples for k in it.skills} | {k for it in examples for k in it.preferred})
    col = {k: j for j, k in enumerate(keys)}
    levels = np.zeros((len(agents), len(keys)))
    for a, agent in enumerate(agents):
        for k, lvl in agent.skills.items():
            j = col.get(k)
            if j is not None:
                levels[a, j] = min(lvl, MAX_LEVEL)
    n_t = len(examples)
    required = np.zeros((n_t, len(keys)))
    wanted = np.zeros((n_t, len(keys)))
    for t, item in enumerate(examples):
        for k, lvl in item.skills.items():
            required[t, col[k]] = lvl
            wanted[t, col[k]] = 1.0
        for k in item.preferred:
            wanted[t, col[k]] = 1.0
    feasible = np.ones((n_t, len(agents)), dtype=bool)
    for j in np.flatnonzero(required.any(axis=0)):
        feasible &= required[:, j, None] <= levels[None, :, j]
    counts = np.maximum(wanted.sum(axis=1), 1.0)
    skill = weights.skill * (wanted @ levels.T) / (MAX_LEVEL * counts)[:, None]
    aff_item_a = np.asarray(aff_item, dtype=np.intp)
    aff_agent_a = np.asarray(aff_agent, dtype=np.intp)
    # a bonus towards an agent who may not take the item is no use to anyone
    usable = feasible[item_type[aff_item_a], aff_agent_a] if len(aff_item_a) else np.zeros(0, dtype=bool)
    return BatchTerms(
        item_score,
        item_type,
        skill,
        feasible,
        aff_item_a[usable],
        aff_agent_a[usable],
        float(weights.affinity),
    )
