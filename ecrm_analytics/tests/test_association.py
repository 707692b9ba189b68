"""Association rules: exact values on a hand-checkable basket set, and a brute-force cross-check."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from ecrm_analytics._validation import AnalyticsInputError
from ecrm_analytics.association import also_bought, association_rules, frequent_itemsets

# The market-basket example of Tan, Steinbach & Kumar, "Introduction to Data Mining", ch. 6.
BASKETS = {
    1: ["bread", "milk"],
    2: ["bread", "diapers", "beer", "eggs"],
    3: ["milk", "diapers", "beer", "cola"],
    4: ["bread", "milk", "diapers", "beer"],
    5: ["bread", "milk", "diapers", "cola"],
}


def long_format(baskets: dict) -> pd.DataFrame:
    rows = [(b, i) for b, items in baskets.items() for i in items]
    return pd.DataFrame(rows, columns=["order_id", "product_id"])


def as_dict(fi) -> dict[frozenset, int]:
    return {frozenset(s): int(c) for s, c in zip(fi.itemsets["itemset"], fi.itemsets["count"], strict=False)}


def rule(rules: pd.DataFrame, ant: set, con: set) -> pd.Series:
    hit = rules[(rules["antecedent"].map(frozenset) == frozenset(ant)) & (rules["consequent"].map(frozenset) == frozenset(con))]
    assert len(hit) == 1
    return hit.iloc[0]


def test_frequent_itemsets_hand_example():
    fi = frequent_itemsets(long_format(BASKETS), min_support=0.4, max_len=3)
    assert fi.n_baskets == 5
    got = as_dict(fi)
    expected = {
        frozenset({"bread"}): 4, frozenset({"milk"}): 4, frozenset({"diapers"}): 4,
        frozenset({"beer"}): 3, frozenset({"cola"}): 2,
        frozenset({"bread", "milk"}): 3, frozenset({"bread", "diapers"}): 3,
        frozenset({"milk", "diapers"}): 3, frozenset({"diapers", "beer"}): 3,
        frozenset({"bread", "beer"}): 2, frozenset({"milk", "beer"}): 2,
        frozenset({"milk", "cola"}): 2, frozenset({"diapers", "cola"}): 2,
        frozenset({"milk", "diapers", "beer"}): 2, frozenset({"bread", "milk", "diapers"}): 2,
        frozenset({"bread", "diapers", "beer"}): 2, frozenset({"milk", "diapers", "cola"}): 2,
    }
    assert got == expected
    assert fi.itemsets["size"].tolist() == [1] * 5 + [2] * 8 + [3] * 4
    assert fi.itemsets.loc[fi.itemsets["itemset"].map(frozenset) == frozenset({"beer"}), "support"].item() == 0.6


def test_rules_hand_example_exact_metrics():
    rules = association_rules(frequent_itemsets(long_format(BASKETS), min_support=0.4, max_len=3))
    r = rule(rules, {"milk", "diapers"}, {"beer"})
    assert r["support"] == pytest.approx(0.4)
    assert r["antecedent_support"] == pytest.approx(0.6)
    assert r["consequent_support"] == pytest.approx(0.6)
    assert r["confidence"] == pytest.approx(2 / 3)
    assert r["lift"] == pytest.approx(10 / 9)
    assert r["leverage"] == pytest.approx(0.4 - 0.36)
    assert r["conviction"] == pytest.approx((1 - 0.6) / (1 - 2 / 3))
    assert r["count"] == 2
    r = rule(rules, {"beer"}, {"diapers"})
    assert (r["confidence"], r["lift"], r["leverage"]) == pytest.approx((1.0, 1.25, 0.12))
    assert math.isinf(r["conviction"])
    # 8 pairs x 2 directions + 4 triples x 6 splits
    assert len(rules) == 16 + 24
    assert rules["lift"].is_monotonic_decreasing


def test_min_confidence_and_lift_filters():
    fi = frequent_itemsets(long_format(BASKETS), min_support=0.4, max_len=3)
    rules = association_rules(fi, min_confidence=0.75, min_lift=1.0)
    assert (rules["confidence"] >= 0.75 - 1e-12).all() and (rules["lift"] >= 1.0 - 1e-12).all()
    pairs = {(a, c) for a, c in zip(rules["antecedent"], rules["consequent"], strict=False)}
    assert (("beer",), ("diapers",)) in pairs
    assert (("bread",), ("milk",)) not in pairs  # confidence 0.75, but lift 0.9375 < 1
    assert (("milk", "cola"), ("diapers",)) in pairs or (("cola", "milk"), ("diapers",)) in pairs  # 1.0, 1.25
    assert len(rules) == 9
    assert len(rules) == len(set(pairs))


def test_also_bought_top_k_by_lift_with_support_floor():
    rules = association_rules(frequent_itemsets(long_format(BASKETS), min_support=0.2, max_len=2))
    top = also_bought(rules, top_k=2, by="lift", min_support=0.4)
    beer = top[top["item"] == "beer"]
    assert beer["also_bought"].tolist() == ["diapers", "bread"]
    assert beer["lift"].tolist() == pytest.approx([1.25, (2 / 3) / 0.8])
    assert beer["rank"].tolist() == [1, 2]
    # eggs occurs once: every pair with it has support 0.2 < floor, so no recommendation.
    assert "eggs" not in set(top["item"])
    assert top.groupby("item").size().max() == 2


def random_baskets(seed: int, n_baskets: int, n_items: int) -> dict[int, list[int]]:
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, n_items + 1)
    p /= p.sum()
    out = {}
    for b in range(n_baskets):
        size = rng.integers(1, 7)
        out[b] = list(rng.choice(n_items, size=size, replace=True, p=p))
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_brute_force_count(seed):
    baskets = random_baskets(seed, n_baskets=300, n_items=12)
    min_support = 0.02
    fi = frequent_itemsets(long_format(baskets), min_support=min_support, max_len=4)
    sets = [frozenset(v) for v in baskets.values()]
    expected = {}
    for size in range(1, 5):
        for combo in itertools.combinations(range(12), size):
            c = sum(1 for s in sets if s.issuperset(combo))
            if c >= min_support * len(sets):
                expected[frozenset(combo)] = c
    assert as_dict(fi) == expected
    rules = association_rules(fi)
    n = len(sets)
    for _, r in rules.sample(40, random_state=seed).iterrows():
        a, c = frozenset(r["antecedent"]), frozenset(r["consequent"])
        n_a = sum(1 for s in sets if s >= a)
        n_c = sum(1 for s in sets if s >= c)
        n_ac = sum(1 for s in sets if s >= a | c)
        assert r["count"] == n_ac
        assert r["confidence"] == pytest.approx(n_ac / n_a)
        assert r["lift"] == pytest.approx((n_ac / n_a) / (n_c / n))


def test_duplicates_and_returns_counted_once_or_excluded():
    df = pd.DataFrame(
        {"order_id": [1, 1, 1, 2, 2, 3], "product_id": ["a", "a", "b", "a", "b", "b"], "qty": [1, 2, 1, 1, -1, 1]}
    )
    fi = frequent_itemsets(df, quantity_col="qty", min_support=0.1)
    assert as_dict(fi) == {frozenset("a"): 2, frozenset("b"): 2, frozenset("ab"): 1}


def test_bad_input():
    with pytest.raises(AnalyticsInputError, match="empty"):
        frequent_itemsets(pd.DataFrame({"order_id": [], "product_id": []}))
    with pytest.raises(AnalyticsInputError, match="missing column"):
        frequent_itemsets(pd.DataFrame({"order_id": [1]}))
    with pytest.raises(AnalyticsInputError, match="min_support"):
        frequent_itemsets(long_format(BASKETS), min_support=0)
    with pytest.raises(AnalyticsInputError, match="positive quantity"):
        frequent_itemsets(pd.DataFrame({"order_id": [1], "product_id": ["a"], "q": [-1]}), quantity_col="q")


def test_single_basket_and_no_frequent_pairs_give_empty_rules():
    fi = frequent_itemsets(pd.DataFrame({"order_id": [1, 2], "product_id": ["a", "b"]}), min_support=0.5)
    assert as_dict(fi) == {frozenset("a"): 1, frozenset("b"): 1}
    rules = association_rules(fi)
    assert len(rules) == 0 and "lift" in rules.columns
    assert len(also_bought(rules)) == 0
