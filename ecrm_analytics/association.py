"""Cross-sell: frequent itemsets, association rules and "customers who bought X also bought".

How itemsets are counted
------------------------
Baskets become a sparse 0/1 matrix ``X`` (baskets x items, SciPy CSR). Item supports
are its column sums. Infrequent items are dropped first (every subset of a frequent
itemset is frequent, Agrawal & Srikant 1994), then all 2-itemset counts come from one
sparse product, the co-occurrence matrix ``X^T X`` — this is where the time goes on a
million baskets, and it runs in compiled code. Longer itemsets (``max_len >= 3``) are
found depth-first by intersecting sorted basket-id lists (Eclat, Zaki 2000), extending
only with items whose pairs with every member are frequent. The output is the same set
of frequent itemsets FP-growth (Han, Pei & Yin 2000) would find; a pure-Python
FP-tree is far slower on a million baskets, which is why it is not used.

Returns and duplicates
----------------------
An item counts once per basket however many lines or units it has. With
``quantity_col`` given, lines with a quantity of zero or less (returns, cancellations)
are left out before counting.

References
----------
Agrawal, R. and Srikant, R. (1994). Fast algorithms for mining association rules.
*Proc. 20th VLDB*, 487-499.

Han, J., Pei, J. and Yin, Y. (2000). Mining frequent patterns without candidate
generation. *Proc. ACM SIGMOD*, 1-12.

Zaki, M. J. (2000). Scalable algorithms for association mining. *IEEE Transactions on
Knowledge and Data Engineering*, 12(3), 372-390.

Brin, S., Motwani, R., Ullman, J. D. and Tsur, S. (1997). Dynamic itemset counting and
implication rules for market basket data (conviction). *Proc. ACM SIGMOD*, 255-264.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse

from ecrm_analytics._validation import AnalyticsInputError, require_columns, require_no_nan, require_non_empty

__all__ = ["FrequentItemsets", "also_bought", "association_rules", "frequent_itemsets"]

RULE_COLUMNS = [
    "antecedent",
    "consequent",
    "antecedent_support",
    "consequent_support",
    "support",
    "confidence",
    "lift",
    "leverage",
    "conviction",
    "count",
]


@dataclass
class FrequentItemsets:
    """Frequent itemsets found in a set of baskets.

    Attributes
    ----------
    itemsets : pandas.DataFrame
        One row per frequent itemset: ``itemset`` (tuple of items), ``size``,
        ``count`` (baskets holding all its items) and ``support`` (count / n_baskets),
        sorted by size, then count descending.
    n_baskets : int
        Number of distinct baskets counted.
    min_support : float
        The support threshold used.
    max_len : int
        The longest itemset size searched.
    """

    itemsets: pd.DataFrame
    n_baskets: int
    min_support: float
    max_len: int
    # Internal: item labels, and counts keyed by tuples of item codes (sorted).
    _items: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))
    _item_counts: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))
    _pairs: tuple[np.ndarray, np.ndarray, np.ndarray] = field(repr=False, default=None)
    _longer: dict[tuple[int, ...], int] = field(repr=False, default_factory=dict)


def _min_count(min_support: float, n: int) -> int:
    # count >= min_support * n, robust to float error (0.3 * 10 = 3.0000000000000004).
    return max(1, math.ceil(min_support * n - 1e-9))


def frequent_itemsets(
    baskets: pd.DataFrame,
    *,
    basket_col: str = "order_id",
    item_col: str = "product_id",
    quantity_col: str | None = None,
    min_support: float = 0.01,
    max_len: int = 2,
) -> FrequentItemsets:
    """Find every itemset whose support is at least ``min_support``.

    Parameters
    ----------
    baskets : pandas.DataFrame
        Long format: one row per (basket, item) line; repeated items count once.
    basket_col, item_col : str
        Basket (order) id and item (product) id columns.
    quantity_col : str, optional
        If given, lines with quantity <= 0 (returns) are ignored.
    min_support : float
        Minimum share of baskets, in (0, 1].
    max_len : int
        Longest itemset to search (1 = single items only).

    Returns
    -------
    FrequentItemsets

    Raises
    ------
    AnalyticsInputError
        Empty input, missing columns, missing ids, or parameters out of range.

    References
    ----------
    Agrawal & Srikant (1994); Zaki (2000). See the module docstring.

    Examples
    --------
    >>> import pandas as pd
    >>> b = pd.DataFrame({"order_id": [1, 1, 2, 2, 3], "product_id": ["tea", "cup", "tea", "cup", "tea"]})
    >>> fi = frequent_itemsets(b, min_support=0.5)
    >>> fi.itemsets
          itemset  size  count   support
    0      (tea,)     1      3  1.000000
    1      (cup,)     1      2  0.666667
    2  (tea, cup)     2      2  0.666667
    """
    if not 0 < min_support <= 1:
        raise AnalyticsInputError(f"min_support must be in (0, 1], got {min_support!r}")
    if int(max_len) != max_len or max_len < 1:
        raise AnalyticsInputError(f"max_len must be a positive integer, got {max_len!r}")
    cols = [basket_col, item_col] + ([quantity_col] if quantity_col else [])
    require_columns(baskets, cols, what="baskets")
    require_non_empty(baskets, what="baskets")
    require_no_nan(baskets[basket_col], name=basket_col)
    require_no_nan(baskets[item_col], name=item_col)
    if quantity_col:
        qty = pd.to_numeric(baskets[quantity_col], errors="coerce")
        require_no_nan(qty, name=quantity_col)
        baskets = baskets.loc[(qty > 0).to_numpy()]
        if len(baskets) == 0:
            raise AnalyticsInputError("baskets has no line with a positive quantity")

    b_codes, b_uniques = pd.factorize(baskets[basket_col], sort=False)
    i_codes, uniques = pd.factorize(baskets[item_col], sort=False)
    # Plain Python labels (not numpy scalars) in the output tuples.
    items = np.empty(len(uniques), dtype=object)
    items[:] = pd.Index(uniques).tolist()
    n_baskets, n_items = len(b_uniques), len(items)
    # One entry per (basket, item): dedupe on a combined int64 key.
    key = np.unique(b_codes.astype(np.int64) * n_items + i_codes)
    rows, cols_ = key // n_items, key % n_items
    item_counts = np.bincount(cols_, minlength=n_items)
    min_count = _min_count(min_support, n_baskets)

    # Items ordered by count (desc), then first appearance, so output order is stable.
    order = np.lexsort((np.arange(n_items), -item_counts))
    frequent = order[item_counts[order] >= min_count]
    records: list[tuple] = [((items[i],), 1, int(item_counts[i])) for i in frequent]

    pairs = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64))
    longer: dict[tuple[int, ...], int] = {}
    if max_len >= 2 and len(frequent) >= 2:
        # Rank codes: 0..m-1 in the frequent order; X restricted to frequent items.
        rank = np.full(n_items, -1, dtype=np.int64)
        rank[frequent] = np.arange(len(frequent))
        keep = rank[cols_] >= 0
        r, c = rows[keep], rank[cols_[keep]]
        m = len(frequent)
        x = sparse.csr_matrix(
            (np.ones(len(r), dtype=np.int32), (r, c)), shape=(n_baskets, m), dtype=np.int32
        )
        co = sparse.triu(x.T @ x, k=1).tocoo()
        ok = co.data >= min_count
        pi, pj, pc = co.row[ok].astype(np.int64), co.col[ok].astype(np.int64), co.data[ok].astype(np.int64)
        srt = np.lexsort((pj, pi, -pc))
        pi, pj, pc = pi[srt], pj[srt], pc[srt]
        pairs = (frequent[pi], frequent[pj], pc)
        records.extend(((items[frequent[a]], items[frequent[b]]), 2, int(n)) for a, b, n in zip(pi, pj, pc, strict=False))
        if max_len >= 3 and len(pi):
            longer = _eclat(x.tocsc(), pi, pj, m, min_count, max_len)
            for ranks, n in sorted(longer.items(), key=lambda kv: (len(kv[0]), -kv[1], kv[0])):
                records.append((tuple(items[frequent[k]] for k in ranks), len(ranks), n))
            longer = {tuple(sorted(int(frequent[k]) for k in ranks)): n for ranks, n in longer.items()}

    table = pd.DataFrame.from_records(records, columns=["itemset", "size", "count"])
    table["support"] = table["count"] / n_baskets
    return FrequentItemsets(
        itemsets=table,
        n_baskets=n_baskets,
        min_support=min_support,
        max_len=int(max_len),
        _items=np.asarray(items),
        _item_counts=item_counts,
        _pairs=pairs,
        _longer=longer,
    )


def _eclat(
    xc: sparse.csc_matrix, pi: np.ndarray, pj: np.ndarray, m: int, min_count: int, max_len: int
) -> dict[tuple[int, ...], int]:
    """Itemsets of size 3..max_len by depth-first tid-list intersection (Eclat)."""
    tids = [xc.indices[xc.indptr[k] : xc.indptr[k + 1]] for k in range(m)]  # sorted basket ids
    # Frequent-pair neighbours with a larger rank, for candidate pruning.
    nbrs: list[set[int]] = [set() for _ in range(m)]
    for a, b in zip(pi.tolist(), pj.tolist(), strict=False):
        nbrs[min(a, b)].add(max(a, b))
    out: dict[tuple[int, ...], int] = {}

    def extend(prefix: tuple[int, ...], tid: np.ndarray, cands: list[int]) -> None:
        for idx, j in enumerate(cands):
            t = np.intersect1d(tid, tids[j], assume_unique=True)
            if len(t) < min_count:
                continue
            itemset = prefix + (j,)
            if len(itemset) >= 3:
                out[itemset] = len(t)
            if len(itemset) < max_len:
                nxt = [k for k in cands[idx + 1 :] if k in nbrs[j]]
                if nxt:
                    extend(itemset, t, nxt)

    for a in range(m):
        cands = sorted(nbrs[a])
        if cands:
            extend((a,), tids[a], cands)
    return out


def association_rules(
    itemsets: FrequentItemsets, *, min_confidence: float = 0.0, min_lift: float = 0.0
) -> pd.DataFrame:
    """Rules ``antecedent -> consequent`` from frequent itemsets, with their metrics.

    Every split of every frequent itemset of size >= 2 into a non-empty antecedent and
    consequent is considered.

    Parameters
    ----------
    itemsets : FrequentItemsets
        Output of :func:`frequent_itemsets`.
    min_confidence : float
        Keep rules with confidence >= this, in [0, 1].
    min_lift : float
        Keep rules with lift >= this.

    Returns
    -------
    pandas.DataFrame
        Columns ``antecedent`` and ``consequent`` (tuples of items),
        ``antecedent_support``, ``consequent_support``, ``support`` (of the union),
        ``confidence`` = support / antecedent_support,
        ``lift`` = confidence / consequent_support,
        ``leverage`` = support - antecedent_support * consequent_support,
        ``conviction`` = (1 - consequent_support) / (1 - confidence) (inf when
        confidence is 1), and ``count`` (baskets holding the union); sorted by lift,
        then confidence, then count, descending.

    References
    ----------
    Agrawal & Srikant (1994); Brin et al. (1997) for conviction.

    Examples
    --------
    >>> import pandas as pd
    >>> b = pd.DataFrame({"order_id": [1, 1, 2, 2, 3], "product_id": ["tea", "cup", "tea", "cup", "tea"]})
    >>> r = association_rules(frequent_itemsets(b, min_support=0.5))
    >>> r[["antecedent", "consequent", "support", "confidence", "lift"]].round(4)
      antecedent consequent  support  confidence  lift
    0     (cup,)     (tea,)   0.6667      1.0000   1.0
    1     (tea,)     (cup,)   0.6667      0.6667   1.0
    """
    if not 0 <= min_confidence <= 1:
        raise AnalyticsInputError(f"min_confidence must be in [0, 1], got {min_confidence!r}")
    n = itemsets.n_baskets
    cnt = itemsets._item_counts
    labels = itemsets._items
    parts = []
    a, b, c = itemsets._pairs
    if len(a):
        ant = np.concatenate([a, b])
        con = np.concatenate([b, a])
        both = np.concatenate([c, c]).astype(np.float64)
        parts.append(
            _rule_frame(
                [(labels[i],) for i in ant],
                [(labels[i],) for i in con],
                cnt[ant] / n,
                cnt[con] / n,
                both,
                n,
            )
        )
    if itemsets._longer:
        counts = dict(itemsets._longer)
        for i, k in enumerate(cnt):
            counts[(i,)] = int(k)
        for i, j, k in zip(a.tolist(), b.tolist(), c.tolist(), strict=False):
            counts[tuple(sorted((i, j)))] = k
        ants, cons, sa, sc, sab = [], [], [], [], []
        for itemset, n_ab in itemsets._longer.items():
            full = tuple(sorted(itemset))
            for r in range(1, len(full)):
                for left in itertools.combinations(full, r):
                    right = tuple(x for x in full if x not in left)
                    ants.append(tuple(labels[x] for x in left))
                    cons.append(tuple(labels[x] for x in right))
                    sa.append(counts[left] / n)
                    sc.append(counts[right] / n)
                    sab.append(n_ab)
        parts.append(_rule_frame(ants, cons, np.array(sa), np.array(sc), np.array(sab, float), n))
    if not parts:
        return pd.DataFrame({col: pd.Series(dtype=object if col in ("antecedent", "consequent") else float)
                             for col in RULE_COLUMNS})
    rules = pd.concat(parts, ignore_index=True)
    rules = rules[(rules["confidence"] >= min_confidence - 1e-12) & (rules["lift"] >= min_lift - 1e-12)]
    rules = rules.sort_values(["lift", "confidence", "count"], ascending=False, kind="stable")
    return rules.reset_index(drop=True)


def _rule_frame(ants, cons, sa, sc, n_ab, n) -> pd.DataFrame:
    support = n_ab / n
    confidence = support / sa
    with np.errstate(divide="ignore", invalid="ignore"):
        conviction = np.where(confidence >= 1.0, np.inf, (1.0 - sc) / (1.0 - confidence))
    return pd.DataFrame(
        {
            "antecedent": ants,
            "consequent": cons,
            "antecedent_support": sa,
            "consequent_support": sc,
            "support": support,
            "confidence": confidence,
            "lift": confidence / sc,
            "leverage": support - sa * sc,
            "conviction": conviction,
            "count": n_ab.astype(np.int64),
        }
    )


def also_bought(
    rules: pd.DataFrame,
    *,
    top_k: int = 5,
    by: str = "lift",
    min_support: float = 0.0,
    min_confidence: float = 0.0,
) -> pd.DataFrame:
    """"Customers who bought X also bought": the top ``top_k`` other items for each item.

    Uses the one-item-to-one-item rules.

    Parameters
    ----------
    rules : pandas.DataFrame
        Output of :func:`association_rules`.
    top_k : int
        How many recommendations per item.
    by : {"lift", "confidence"}
        Ranking metric; ties are broken by the other metric, then by support.
    min_support : float
        Support floor for a pair to be recommended (guards against high-lift pairs
        seen in only a handful of baskets).
    min_confidence : float
        Confidence floor.

    Returns
    -------
    pandas.DataFrame
        Columns ``item``, ``rank`` (1 = best), ``also_bought``, ``support``,
        ``confidence``, ``lift``, ``count``; sorted by item then rank.

    Examples
    --------
    >>> import pandas as pd
    >>> b = pd.DataFrame({"order_id": [1, 1, 2, 2, 3, 3, 4],
    ...                   "product_id": ["tea", "cup", "tea", "cup", "tea", "pot", "pot"]})
    >>> rules = association_rules(frequent_itemsets(b, min_support=0.25))
    >>> also_bought(rules, top_k=1, by="confidence")
      item  rank also_bought  support  confidence      lift  count
    0  cup     1         tea     0.50    1.000000  1.333333      2
    1  pot     1         tea     0.25    0.500000  0.666667      1
    2  tea     1         cup     0.50    0.666667  1.333333      2
    """
    if by not in ("lift", "confidence"):
        raise AnalyticsInputError(f"by must be 'lift' or 'confidence', got {by!r}")
    if top_k < 1:
        raise AnalyticsInputError(f"top_k must be at least 1, got {top_k!r}")
    require_columns(rules, RULE_COLUMNS, what="rules")
    single = (rules["antecedent"].map(len) == 1) & (rules["consequent"].map(len) == 1)
    r = rules.loc[single & (rules["support"] >= min_support) & (rules["confidence"] >= min_confidence)]
    other = "confidence" if by == "lift" else "lift"
    out = pd.DataFrame(
        {
            "item": r["antecedent"].map(lambda t: t[0]),
            "also_bought": r["consequent"].map(lambda t: t[0]),
            "support": r["support"],
            "confidence": r["confidence"],
            "lift": r["lift"],
            "count": r["count"],
        }
    )
    out["_item_key"] = out["item"].astype(str)
    out = out.sort_values(["_item_key", by, other, "support"], ascending=[True, False, False, False], kind="stable")
    out = out.groupby("_item_key", sort=False).head(top_k).copy()
    out["rank"] = out.groupby("_item_key", sort=False).cumcount() + 1
    cols = ["item", "rank", "also_bought", "support", "confidence", "lift", "count"]
    return out[cols].reset_index(drop=True)
