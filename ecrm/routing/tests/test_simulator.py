"""The discrete-event routing simulator: exact small cases, determinism, calibration, the comparison."""

from __future__ import annotations

import numpy as np
import pytest

from ecrm.routing.engine import POLICIES
from ecrm.routing.engine.simulate import (
    CATEGORIES,
    SKILL_SPEED,
    Scenario,
    SimAgent,
    compare,
    format_table,
    generate_scenario,
    simulate,
)


def tiny(agents, arrivals, hours=1.0):
    """arrivals: (time, channel index, language index, category index, value, base handle)."""
    a = np.array(arrivals, dtype=float)
    return Scenario(
        seed=0,
        hours=hours,
        agents=tuple(agents),
        arrival_time=a[:, 0],
        channel=a[:, 1].astype(int),
        language=a[:, 2].astype(int),
        category=a[:, 3].astype(int),
        value=a[:, 4],
        base_handle=a[:, 5],
        load_factor=1.0,
    )


RETURNS = CATEGORIES.index("returns")


def test_one_phone_agent_serves_calls_in_turn_and_the_waits_are_exact():
    agent = SimAgent(1, "phone", 1, {"lang:zh": 5, "cat:returns": 3}, 0.0, 3600.0)
    # three calls, 100 s of work each at level 3 (factor 1.0); at t=100 the 2nd (waited 90 s) and
    # the 3rd, a VIP (waited 50 s), are both waiting: the optimal policy takes the VIP first, the
    # simple ones serve in queue order. Either way the waits add up to 240 s.
    scenario = tiny(
        [agent], [(0, 1, 0, RETURNS, 0, 100), (10, 1, 0, RETURNS, 0, 100), (50, 1, 0, RETURNS, 1, 100)]
    )
    for policy in POLICIES:
        r = simulate(scenario, policy)
        assert r.answered == 3
        assert r.mean_wait == pytest.approx((0 + 90 + 150) / 3)
        assert r.sla_attainment == pytest.approx(1 / 3)  # phone target is 20 s
        assert r.vip_mean_wait == pytest.approx(50 if policy == "optimal" else 150)
        assert r.occupancy == pytest.approx(300 / 3600)
        assert r.skill_match == 3.0 and r.mean_handle == pytest.approx(100)


def test_chat_capacity_holds_several_at_once_and_multitasking_slows_them():
    agent = SimAgent(1, "chat", 2, {"lang:en": 4, "cat:returns": 3}, 0.0, 3600.0)
    scenario = tiny(
        [agent], [(0, 0, 1, RETURNS, 0, 100), (1, 0, 1, RETURNS, 0, 100), (2, 0, 1, RETURNS, 0, 100)]
    )
    r = simulate(scenario, "optimal")
    # 1st: 100 s alone; 2nd starts with one in hand: 120 s (ends 121); 3rd waits for the 1st (t=100)
    # and starts with one in hand: 120 s
    assert r.mean_wait == pytest.approx((0 + 0 + 98) / 3)
    assert r.mean_handle == pytest.approx((100 + 120 + 120) / 3)


def test_the_optimal_policy_sends_work_to_the_expert_and_it_is_handled_faster():
    novice = SimAgent(1, "phone", 1, {"lang:zh": 5}, 0.0, 3600.0)
    expert = SimAgent(2, "phone", 1, {"lang:zh": 5, "cat:returns": 5}, 0.0, 3600.0)
    scenario = tiny([novice, expert], [(0, 1, 0, RETURNS, 0, 100)])
    assert simulate(scenario, "optimal").mean_handle == pytest.approx(100 * SKILL_SPEED[5])
    assert simulate(scenario, "round_robin").mean_handle == pytest.approx(100 * SKILL_SPEED[0])


def test_language_is_a_hard_constraint_in_the_simulation():
    zh = SimAgent(1, "phone", 1, {"lang:zh": 5}, 0.0, 3600.0)
    en = SimAgent(2, "phone", 1, {"lang:en": 5}, 0.0, 3600.0)
    # an English call arrives while the English agent is busy: it waits although zh is free
    scenario = tiny([zh, en], [(0, 1, 1, RETURNS, 0, 100), (10, 1, 1, RETURNS, 0, 100)])
    for policy in POLICIES:
        r = simulate(scenario, policy)
        assert r.answered == 2 and r.mean_wait == pytest.approx((0 + (100 * SKILL_SPEED[0] - 10)) / 2)


def test_shifts_bound_who_takes_work_and_the_last_shift_drains_the_queue():
    early = SimAgent(1, "phone", 1, {"lang:zh": 5, "cat:returns": 3}, 0.0, 1800.0)
    late = SimAgent(2, "phone", 1, {"lang:zh": 5, "cat:returns": 3}, 1800.0, 3600.0)
    # a call at 1700 s goes to the early agent (who finishes it after their shift); one at 1750 s
    # waits for the late agent at 1800 s; one at 3590 s is handled after the day ends
    scenario = tiny(
        [early, late],
        [(1700, 1, 0, RETURNS, 0, 300), (1750, 1, 0, RETURNS, 0, 100), (3590, 1, 0, RETURNS, 0, 100)],
    )
    r = simulate(scenario, "least_loaded")
    assert r.answered == 3
    assert r.mean_wait == pytest.approx((0 + 50 + 0) / 3)
    # busy time counts inside shifts only: 100 (early, to 1800) + 100 (late) + 10 (late, to 3600)
    assert r.occupancy == pytest.approx(210 / 3600)


def test_every_policy_sees_the_same_day_and_runs_are_deterministic():
    scenario = generate_scenario(5, 0.8, hours=1.0, n_chat=6, n_phone=4, calibrate_on=None)
    first = compare(scenario)
    again = compare(scenario)
    for policy in POLICIES:
        a, b = first[policy].as_dict(), again[policy].as_dict()
        a.pop("solve_ms_mean"), b.pop("solve_ms_mean")
        assert a == b
        assert first[policy].items == len(scenario) == first[policy].answered
        assert 0 < first[policy].occupancy <= 1
    same = generate_scenario(5, 0.8, hours=1.0, n_chat=6, n_phone=4, calibrate_on=None)
    assert np.array_equal(same.arrival_time, scenario.arrival_time)
    assert np.array_equal(same.base_handle, scenario.base_handle)


def test_calibration_puts_round_robin_at_the_requested_occupancy():
    scenario = generate_scenario(3, 0.85, hours=2.0, n_chat=10, n_phone=6)
    measured = simulate(scenario, "round_robin").occupancy
    assert measured == pytest.approx(0.85, abs=0.03)


def test_at_85_percent_the_optimal_policy_waits_less_with_better_skill_match():
    scenario = generate_scenario(1, 0.85, hours=4.0, n_chat=20, n_phone=12)
    results = compare(scenario)
    optimal, rr, ll = results["optimal"], results["round_robin"], results["least_loaded"]
    assert rr.occupancy == pytest.approx(0.85, abs=0.03)
    assert optimal.mean_wait < 0.8 * rr.mean_wait
    assert optimal.sla_attainment > rr.sla_attainment
    assert optimal.skill_match > rr.skill_match + 1.0 and optimal.skill_match > ll.skill_match + 1.0
    table = format_table(results)
    assert table.count("\n") == 4 and "| optimal |" in table and "+0%" in table


def test_the_management_command_prints_the_comparison():
    import io
    import json

    from django.core.management import call_command

    out = io.StringIO()
    call_command(
        "simulate_routing", "--hours", "1", "--chat-agents", "6", "--phone-agents", "4", "--json", stdout=out
    )
    payload = json.loads(out.getvalue())
    assert set(payload["results"]) == set(POLICIES)
    assert payload["results"]["round_robin"]["occupancy"] == pytest.approx(0.85, abs=0.08)
    assert all(r["answered"] == payload["items"] for r in payload["results"].values())
    table = io.StringIO()
    call_command(
        "simulate_routing", "--hours", "1", "--chat-agents", "6", "--phone-agents", "4", stdout=table
    )
    assert "| round_robin |" in table.getvalue() and "occupancy" in table.getvalue()
