"""The pure routing engine: optimal batch assignment, limits, the simple policies and explanations.

Plain pytest, no database: the engine takes dataclasses and returns decisions.
"""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest

from ecrm.routing.engine import POLICIES, AgentSpec, ItemSpec, Weights, score, solve
from ecrm.routing.engine.scoring import batch_terms, explain


def agent(id, skills, chat=3, load=0, **more):
    return AgentSpec(id=id, skills=skills, capacity={"chat": chat, **more}, load={"chat": load})


def total(decisions):
    return round(sum(d.score for d in decisions), 6)


def greedy_first_come(items, agents, weights=Weights()):  # noqa: B008 - frozen
    """The policy the issue says not to use: each item in arrival order takes its best free agent."""
    extra = Counter()
    out = []
    for item in items:
        best = None
        for a in agents:
            if a.free(item.channel) - extra[a.id] <= 0:
                continue
            d = score(item, a, weights, check_capacity=False)
            if d is None:
                continue
            d = explain(item, a, weights, policy="greedy", extra_load=extra[a.id])
            if best is None or d.score > best.score:
                best = d
        if best is not None:
            extra[best.agent_id] += 1
            out.append(best)
    return out


# --- optimal beats greedy -------------------------------------------------------------------


def test_optimal_covers_an_item_that_first_come_greedy_strands():
    # Li Wei speaks both languages; Tom only English. The English chat arrives first and greedy
    # gives it to the better English speaker (Li Wei), leaving the Chinese chat with nobody.
    li = AgentSpec(1, {"lang:zh": 5, "lang:en": 5}, {"chat": 1}, {"chat": 0}, name="Li Wei")
    tom = AgentSpec(2, {"lang:en": 3}, {"chat": 1}, {"chat": 0}, name="Tom")
    en = ItemSpec(10, "chat", skills={"lang:en": 1})
    zh = ItemSpec(11, "chat", skills={"lang:zh": 1})

    greedy = greedy_first_come([en, zh], [li, tom])
    assert [(d.item_id, d.agent_id) for d in greedy] == [(10, 1)]

    optimal = solve([en, zh], [li, tom])
    assert sorted((d.item_id, d.agent_id) for d in optimal) == [(10, 2), (11, 1)]
    assert total(optimal) > total(greedy)
    assert total(greedy) == 5.0  # BASE 1 + skill 3 * 5/5 + load 1
    assert total(optimal) == pytest.approx(5.0 + 3.8)  # zh to Li (5.0) + en to Tom (1 + 3*3/5 + 1)


def test_optimal_gives_the_expert_to_the_item_that_needs_the_expertise():
    # Both items can be handled by both agents, but only the returns case benefits from the
    # returns expert; greedy hands the expert to whichever arrives first.
    expert = agent(1, {"lang:zh": 5, "cat:returns": 5, "cat:billing": 3}, chat=1)
    generalist = agent(2, {"lang:zh": 5, "cat:returns": 1, "cat:billing": 3}, chat=1)
    billing = ItemSpec(20, "chat", skills={"lang:zh": 1}, preferred={"cat:billing": 3})
    returns = ItemSpec(21, "chat", skills={"lang:zh": 1}, preferred={"cat:returns": 3})
    greedy = greedy_first_come([billing, returns], [expert, generalist])
    optimal = solve([billing, returns], [expert, generalist])
    assert {(d.item_id, d.agent_id) for d in greedy} == {(20, 1), (21, 2)}
    assert {(d.item_id, d.agent_id) for d in optimal} == {(20, 2), (21, 1)}
    assert total(optimal) - total(greedy) == pytest.approx(3.0 * (4 / 10) * 1)  # 2 skill points of 10


# --- hard limits on random instances --------------------------------------------------------


def random_instance(rng, n_items, n_agents):
    langs = ["zh", "en", "ja"]
    cats = ["returns", "billing", "orders"]
    agents = []
    for a in range(n_agents):
        skills = {f"lang:{lang}": int(rng.integers(1, 6)) for lang in langs if rng.random() < 0.5}
        skills.update({f"cat:{c}": int(rng.integers(1, 6)) for c in cats if rng.random() < 0.6})
        capacity = {"chat": int(rng.integers(0, 4)), "email": int(rng.integers(0, 6))}
        load = {ch: int(rng.integers(0, cap + 1)) for ch, cap in capacity.items()}
        agents.append(AgentSpec(100 + a, skills, capacity, load))
    items = []
    for i in range(n_items):
        required = {f"lang:{rng.choice(langs)}": int(rng.integers(1, 4))}
        if rng.random() < 0.3:
            required[f"cat:{rng.choice(cats)}"] = int(rng.integers(1, 5))
        items.append(
            ItemSpec(
                id=i,
                channel=str(rng.choice(["chat", "email"])),
                skills=required,
                preferred={f"cat:{rng.choice(cats)}": 3} if rng.random() < 0.7 else {},
                priority=int(rng.integers(0, 3)),
                sla_seconds_left=float(rng.uniform(-600, 3600)) if rng.random() < 0.8 else None,
                value=float(rng.random()),
                waited_seconds=float(rng.uniform(0, 1200)),
                last_agent_id=int(100 + rng.integers(0, n_agents)) if rng.random() < 0.2 else None,
            )
        )
    return items, agents


def check_limits(items, agents, decisions):
    by_id = {a.id: a for a in agents}
    items_by_id = {it.id: it for it in items}
    assert len({d.item_id for d in decisions}) == len(decisions), "an item was assigned twice"
    taken = Counter()
    for d in decisions:
        item, a = items_by_id[d.item_id], by_id[d.agent_id]
        for skill, level in item.skills.items():
            assert a.skills.get(skill, 0) >= level, (d, skill)
        taken[a.id, item.channel] += 1
    for (agent_id, channel), n in taken.items():
        assert n <= by_id[agent_id].free(channel), (agent_id, channel, n)


def test_capacity_and_skill_limits_are_never_exceeded_on_random_instances():
    rng = np.random.default_rng(20261201)
    for _ in range(60):
        items, agents = random_instance(rng, int(rng.integers(1, 40)), int(rng.integers(1, 12)))
        results = {}
        for policy in POLICIES:
            decisions = solve(items, agents, policy=policy, state={})
            check_limits(items, agents, decisions)
            results[policy] = decisions
        flow = solve(items, agents, method="flow")
        check_limits(items, agents, flow)
        # both exact solvers reach the same optimum, and nothing else does better
        assert total(flow) == pytest.approx(total(results["optimal"]), abs=1e-5)
        for other in ("round_robin", "least_loaded"):
            assert total(results["optimal"]) >= total(results[other]) - 1e-6
        assert total(results["optimal"]) >= total(greedy_first_come(items, agents)) - 1e-6


def test_the_flow_solver_falls_back_to_linprog_without_the_highs_binding(monkeypatch):
    import sys

    rng = np.random.default_rng(11)
    items, agents = random_instance(rng, 40, 10)
    direct = solve(items, agents, method="flow")
    import scipy.optimize._highspy as highspy

    import ecrm.routing.engine.policies as policies

    # the private binding gone (as if scipy moved it): the import fails, linprog takes over
    monkeypatch.delattr(highspy, "_core")
    monkeypatch.setitem(sys.modules, "scipy.optimize._highspy._core", None)
    calls = []
    real_linprog = policies.linprog
    monkeypatch.setattr(policies, "linprog", lambda *a, **k: calls.append(1) or real_linprog(*a, **k))
    fallback = solve(items, agents, method="flow")
    assert calls == [1]
    assert len(direct) > 5
    assert total(fallback) == pytest.approx(total(direct), abs=1e-6)
    check_limits(items, agents, fallback)


def brute_force_best(items, agents, weights):
    """Try every way to give each item an agent or nobody (tiny instances only)."""
    best = 0.0
    for choice in itertools.product([None, *agents], repeat=len(items)):
        used = Counter()
        value = 0.0
        ok = True
        # slots of one agent are filled in order, so the k-th item there sees load + k
        for item, a in zip(items, choice, strict=True):
            if a is None:
                continue
            if (
                used[a.id, item.channel] >= a.free(item.channel)
                or score(item, a, check_capacity=False) is None
            ):
                ok = False
                break
            value += explain(item, a, weights, policy="x", extra_load=used[a.id, item.channel]).score
            used[a.id, item.channel] += 1
        if ok:
            best = max(best, value)
    return best


def test_optimal_matches_brute_force_on_tiny_instances():
    rng = np.random.default_rng(7)
    for _ in range(25):
        items, agents = random_instance(rng, int(rng.integers(1, 6)), int(rng.integers(1, 4)))
        weights = Weights(*rng.uniform(0, 3, size=7))
        expected = brute_force_best(items, agents, weights)
        assert total(solve(items, agents, weights)) == pytest.approx(expected, abs=1e-5)
        assert total(solve(items, agents, weights, method="flow")) == pytest.approx(expected, abs=1e-5)


def test_items_without_a_feasible_agent_stay_out():
    agents = [agent(1, {"lang:zh": 5}), agent(2, {"lang:en": 2})]
    items = [
        ItemSpec(1, "chat", skills={"lang:ja": 1}),  # nobody speaks Japanese
        ItemSpec(2, "chat", skills={"lang:en": 3}),  # English, but at level 3
        ItemSpec(3, "email", skills={"lang:zh": 1}),  # nobody takes email
        ItemSpec(4, "chat", skills={"lang:zh": 1}),
    ]
    for policy in POLICIES:
        decisions = solve(items, agents, policy=policy)
        assert [(d.item_id, d.agent_id) for d in decisions] == [(4, 1)], policy


def test_the_urgent_item_wins_the_last_slot():
    agents = [agent(1, {"lang:zh": 4}, chat=3, load=2)]
    calm = ItemSpec(1, "chat", skills={"lang:zh": 1}, sla_seconds_left=3600, waited_seconds=30)
    urgent = ItemSpec(2, "chat", skills={"lang:zh": 1}, sla_seconds_left=120, waited_seconds=10)
    vip = ItemSpec(3, "chat", skills={"lang:zh": 1}, value=1.0, sla_seconds_left=3600)
    assert [d.item_id for d in solve([calm, urgent], agents)] == [2]
    assert [d.item_id for d in solve([calm, vip], agents)] == [3]
    high = ItemSpec(4, "chat", skills={"lang:zh": 1}, priority=3)
    assert [d.item_id for d in solve([calm, high], agents)] == [4]


def test_work_spreads_over_agents_when_skills_are_equal():
    agents = [agent(1, {"lang:zh": 4}), agent(2, {"lang:zh": 4}), agent(3, {"lang:zh": 4}, load=2)]
    items = [ItemSpec(i, "chat", skills={"lang:zh": 1}) for i in range(4)]
    per_agent = Counter(d.agent_id for d in solve(items, agents))
    assert per_agent == {1: 2, 2: 2}


# --- the simple policies --------------------------------------------------------------------


def test_round_robin_rotates_through_agents_using_the_state():
    agents = [agent(i, {"lang:zh": 3}, chat=10) for i in (3, 1, 2)]
    state: dict = {}
    first = solve([ItemSpec(1, "chat", skills={"lang:zh": 1})], agents, policy="round_robin", state=state)
    second = solve([ItemSpec(2, "chat", skills={"lang:zh": 1})], agents, policy="round_robin", state=state)
    batch = solve(
        [ItemSpec(i, "chat", skills={"lang:zh": 1}) for i in (3, 4, 5)],
        agents,
        policy="round_robin",
        state=state,
    )
    assert [d.agent_id for d in first + second + batch] == [1, 2, 3, 1, 2]
    assert state == {"round_robin_last": 2}
    # an agent without the skill or without room is skipped, not waited for
    agents = [agent(1, {"lang:zh": 3}), agent(2, {"lang:en": 3}), agent(3, {"lang:zh": 3}, load=3)]
    state = {"round_robin_last": 1}
    d = solve([ItemSpec(9, "chat", skills={"lang:zh": 1})], agents, policy="round_robin", state=state)
    assert [x.agent_id for x in d] == [1]


def test_round_robin_serves_the_queue_in_priority_then_wait_order():
    agents = [agent(1, {"lang:zh": 3}, chat=1), agent(2, {"lang:zh": 3}, chat=1)]
    items = [
        ItemSpec(1, "chat", skills={"lang:zh": 1}, waited_seconds=50),
        ItemSpec(2, "chat", skills={"lang:zh": 1}, waited_seconds=90),
        ItemSpec(3, "chat", skills={"lang:zh": 1}, priority=1),
    ]
    assert [(d.item_id, d.agent_id) for d in solve(items, agents, policy="round_robin", state={})] == [
        (3, 1),
        (2, 2),
    ]


def test_least_loaded_picks_the_emptiest_agent():
    agents = [
        AgentSpec(1, {"lang:zh": 5}, {"chat": 3}, {"chat": 2}),  # 2/3
        AgentSpec(2, {"lang:zh": 5}, {"chat": 10}, {"chat": 5}),  # 1/2
        AgentSpec(3, {"lang:zh": 1}, {"chat": 4}, {"chat": 1}),  # 1/4, the emptiest
        AgentSpec(4, {"lang:en": 5}, {"chat": 4}, {"chat": 0}),  # empty but lacks Chinese
    ]
    items = [ItemSpec(i, "chat", skills={"lang:zh": 1}) for i in range(1, 4)]
    decisions = solve(items, agents, policy="least_loaded")
    # 3 goes 1/4 -> 2/4 (tie with agent 2 at 1/2 broken by overall load: 2 has 5/10, 3 has 2/4)
    assert [d.agent_id for d in decisions] == [3, 2, 3]


def test_unknown_policy_and_negative_weights_are_refused():
    with pytest.raises(ValueError, match="unknown policy"):
        solve([ItemSpec(1, "chat")], [agent(1, {})], policy="fastest")
    with pytest.raises(ValueError, match="must be >= 0"):
        Weights(skill=-1)


# --- explanations ---------------------------------------------------------------------------


def test_explanation_names_the_deciding_factors():
    li = AgentSpec(
        7, {"lang:zh": 5, "cat:returns": 4}, {"chat": 3, "email": 10}, {"chat": 0, "email": 4}, name="Li Wei"
    )
    item = ItemSpec(
        1,
        "chat",
        skills={"lang:zh": 1},
        preferred={"cat:returns": 3},
        sla_seconds_left=6 * 60 + 20,
        value=1.0,
        last_agent_id=7,
    )
    [d] = solve([item], [li])
    assert d.reasons == [
        "speaks zh",
        "returns skill 4/5",
        "1 of 3 chats",
        "helped this customer before",
        "VIP customer",
        "6 min to SLA breach",
    ]
    w = Weights()
    assert d.factors == {
        "skill": pytest.approx(w.skill * (5 + 4) / 10),
        "load": pytest.approx(w.load * 1.0),
        "affinity": pytest.approx(w.affinity),
        "urgency": pytest.approx(w.urgency / (1 + 380 / 300), abs=1e-6),
        "value": pytest.approx(w.value),
        "wait": 0.0,
        "priority": 0.0,
    }
    assert d.score == pytest.approx(1.0 + sum(d.factors.values()), abs=1e-5)
    assert d.policy == "optimal"


def test_explanation_shows_the_load_each_item_really_gets_and_breaches():
    a = agent(1, {"lang:en": 3}, chat=3, load=1)
    items = [
        ItemSpec(1, "chat", skills={"lang:en": 1}, sla_seconds_left=-150, waited_seconds=600),
        ItemSpec(2, "chat", skills={"lang:en": 1}, priority=2),
    ]
    decisions = solve(items, [a])
    loads = sorted(r for d in decisions for r in d.reasons if "chats" in r)
    assert loads == ["2 of 3 chats", "3 of 3 chats"]
    by_item = {d.item_id: d.reasons for d in decisions}
    assert "SLA breached 2 min ago" in by_item[1] and "waiting 10 min" in by_item[1]
    assert "priority 2 queue" in by_item[2]


def test_batch_scoring_matches_the_explained_score():
    rng = np.random.default_rng(3)
    items, agents = random_instance(rng, 30, 8)
    items = [it for it in items if it.channel == "chat"]
    weights = Weights(1.5, 0.5, 2.5, 1.0, 2.0, 0.7, 0.3)
    terms = batch_terms(items, agents, weights)
    pair, feasible = terms.pair_score(), terms.feasible()
    for i, item in enumerate(items):
        for a, ag in enumerate(agents):
            assert feasible[i, a] == (score(item, ag, check_capacity=False) is not None)
            if not feasible[i, a]:
                continue
            d = explain(item, ag, weights, policy="x")
            assert pair[i, a] + d.factors["load"] == pytest.approx(d.score, abs=1e-5)


def test_score_explains_one_pair_or_says_no():
    a = agent(1, {"lang:zh": 2}, chat=1)
    assert score(ItemSpec(1, "chat", skills={"lang:zh": 3}), a) is None
    assert score(ItemSpec(1, "chat", skills={"lang:zh": 1}), agent(1, {"lang:zh": 2}, chat=1, load=1)) is None
    d = score(ItemSpec(1, "chat", skills={"lang:zh": 1}), a)
    assert d is not None and d.agent_id == 1 and d.reasons == ["speaks zh", "1 of 1 chats"]
