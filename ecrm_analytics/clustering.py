"""Behavioural segmentation: k-means on standardised (log where skewed) features.

Method
------
1. Take the chosen feature columns (default: recency, number of orders, net revenue,
   mean order value from :func:`ecrm_analytics.features.customer_features`).
2. ``log1p`` every non-negative column whose sample skewness exceeds ``skew_threshold``
   (1.0): spend and order counts are long-tailed, and without the log the
   few biggest customers would each get a cluster of their own. A skewed column with
   negative values (net revenue after returns) is left unlogged.
3. Standardise to zero mean and unit variance, so no feature dominates by its unit.
4. Run k-means (k-means++ starts, ``n_init`` restarts) for every k in ``k_range`` and
   keep the k with the **highest mean silhouette** (Rousseeuw 1987), computed on the
   same random sample of at most ``sample_size`` customers for every k (silhouette
   is quadratic in the number of points). A fixed ``n_clusters`` skips the search.
5. Clusters are numbered by size (0 = largest) and profiled: size, share, the mean of
   each original (untransformed) feature, and a plain-language label built from the
   features whose cluster mean is at least ``label_threshold`` standard deviations
   (in the transformed space) from the overall mean, the three strongest first, such
   as "recent, frequent, high-value customers".

References
----------
Arthur, D. and Vassilvitskii, S. (2007). k-means++: the advantages of careful seeding.
*Proc. 18th ACM-SIAM SODA*, 1027-1035.

Rousseeuw, P. J. (1987). Silhouettes: a graphical aid to the interpretation and
validation of cluster analysis. *Journal of Computational and Applied Mathematics*, 20,
53-65.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecrm_analytics._validation import AnalyticsInputError, require_columns, require_non_empty

__all__ = ["DEFAULT_COLUMNS", "VOCABULARY", "CustomerSegmenter"]

DEFAULT_COLUMNS = ("recency_days", "n_orders", "revenue_total", "revenue_mean")

#: Feature -> (word when high, word when low), used for cluster labels.
VOCABULARY: dict[str, tuple[str, str]] = {
    "recency_days": ("lapsed", "recent"),
    "n_orders": ("frequent", "occasional"),
    "frequency": ("frequent", "one-off"),
    "revenue_total": ("high-value", "low-value"),
    "revenue_mean": ("big-basket", "small-basket"),
    "tenure_days": ("long-standing", "new"),
    "orders_90d": ("recently active", "recently inactive"),
    "revenue_90d": ("recently spending", "recently not spending"),
    "orders_365d": ("active this year", "inactive this year"),
    "mean_gap_days": ("slow-repeating", "fast-repeating"),
    "return_rate": ("high-returning", "low-returning"),
    "monetary_value": ("high-spending", "low-spending"),
    "clv": ("high-CLV", "low-CLV"),
    "probability_alive": ("likely active", "likely lapsed"),
}


class CustomerSegmenter:
    """k-means segmentation of customers with k chosen by silhouette; config -> fit -> predict.

    Parameters
    ----------
    columns : sequence of str, optional
        Feature columns (default :data:`DEFAULT_COLUMNS`).
    n_clusters : int, optional
        Fix k; default: choose from ``k_range`` by silhouette.
    k_range : (int, int)
        Inclusive range of k to try.
    log_transform : "auto", or sequence of str
        Columns to ``log1p``; "auto" picks non-negative columns with skewness above
        ``skew_threshold``.
    skew_threshold : float
    sample_size : int
        Most customers used to compute each silhouette.
    n_init : int
        k-means restarts per k.
    label_threshold : float
        Standard deviations from the mean for a feature to name a cluster.
    vocabulary : mapping, optional
        Extra or replacement entries for :data:`VOCABULARY`.
    random_state : int

    Attributes
    ----------
    k_ : int
    silhouette_ : dict of int to float
        Mean silhouette per k tried.
    labels_ : pandas.Series
        Cluster per customer of the fitted data.
    profile_ : pandas.DataFrame
        Per cluster: ``size``, ``share``, ``<feature>_mean`` and ``label``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> def group(n, rec, orders, value):
    ...     return pd.DataFrame({"recency_days": rng.normal(rec, rec / 10, n).clip(1),
    ...                          "n_orders": rng.poisson(orders, n) + 1.0,
    ...                          "revenue_total": rng.lognormal(np.log(value), 0.2, n),
    ...                          "revenue_mean": rng.lognormal(np.log(value / (orders + 1)), 0.2, n)})
    >>> feats = pd.concat([group(300, 20, 15, 3000), group(500, 400, 0, 40), group(200, 60, 4, 400)],
    ...                   ignore_index=True)
    >>> seg = CustomerSegmenter(k_range=(2, 6)).fit(feats)
    >>> seg.k_
    3
    >>> seg.profile_["size"].tolist()
    [500, 298, 202]
    >>> seg.profile_["label"].tolist()  # doctest: +NORMALIZE_WHITESPACE
    ['lapsed, low-value, occasional customers', 'frequent, big-basket, high-value customers',
     'recent customers']
    """

    def __init__(
        self,
        *,
        columns: Sequence[str] | None = None,
        n_clusters: int | None = None,
        k_range: tuple[int, int] = (2, 8),
        log_transform: str | Sequence[str] = "auto",
        skew_threshold: float = 1.0,
        sample_size: int = 10_000,
        n_init: int = 10,
        label_threshold: float = 0.5,
        vocabulary: Mapping[str, tuple[str, str]] | None = None,
        random_state: int = 0,
    ) -> None:
        if n_clusters is not None and n_clusters < 2:
            raise AnalyticsInputError("n_clusters must be at least 2")
        if k_range[0] < 2 or k_range[1] < k_range[0]:
            raise AnalyticsInputError(f"k_range must be (lo, hi) with 2 <= lo <= hi, got {k_range!r}")
        self.config: dict[str, Any] = {
            "columns": list(columns or DEFAULT_COLUMNS),
            "n_clusters": n_clusters,
            "k_range": [int(k_range[0]), int(k_range[1])],
            "log_transform": log_transform if isinstance(log_transform, str) else list(log_transform),
            "skew_threshold": float(skew_threshold),
            "sample_size": int(sample_size),
            "n_init": int(n_init),
            "label_threshold": float(label_threshold),
            "vocabulary": {k: list(v) for k, v in (vocabulary or {}).items()},
            "random_state": int(random_state),
        }
        self.k_: int | None = None
        self.silhouette_: dict[int, float] = {}
        self.labels_: pd.Series | None = None
        self.profile_: pd.DataFrame | None = None
        self.log_columns_: list[str] = []
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None
        self.centers_: np.ndarray | None = None

    # -- transform ------------------------------------------------------------------------
    def _raw(self, features: pd.DataFrame) -> pd.DataFrame:
        cols = self.config["columns"]
        require_columns(features, cols, what="features")
        require_non_empty(features, what="features")
        x = features[cols]
        for c in cols:
            if not pd.api.types.is_numeric_dtype(x[c]):
                raise AnalyticsInputError(f"feature column {c!r} must be numeric")
        x = x.astype("float64")
        bad = ~np.isfinite(x.to_numpy())
        if bad.any():
            per_col = dict(zip(cols, bad.sum(axis=0).tolist(), strict=True))
            raise AnalyticsInputError(
                "features have missing or infinite values "
                + ", ".join(f"{c}: {n}" for c, n in per_col.items() if n)
                + "; fill or drop them (e.g. mean_gap_days is NaN for one-time buyers)"
            )
        return x

    def _transform(self, x: pd.DataFrame) -> np.ndarray:
        z = x.copy()
        for c in self.log_columns_:
            if (z[c] < 0).any():
                raise AnalyticsInputError(f"column {c!r} was log-transformed at fit but has negative values")
            z[c] = np.log1p(z[c])
        return (z.to_numpy() - self.mean_) / self.scale_

    # -- fit --------------------------------------------------------------------------------
    def fit(self, features: pd.DataFrame) -> CustomerSegmenter:
        """Choose k, fit k-means and build the profile; returns ``self``.

        Parameters
        ----------
        features : pandas.DataFrame
            One row per customer (index = customer id) with the feature columns.

        Returns
        -------
        self

        Raises
        ------
        AnalyticsInputError
            Missing/non-numeric/NaN features, or fewer customers than needed (more
            distinct customers than the largest k tried).
        """
        from scipy.stats import skew
        from sklearn.cluster import KMeans
        from sklearn.metrics import silhouette_score

        cfg = self.config
        x = self._raw(features)
        n_distinct = len(x.drop_duplicates())
        ks = [cfg["n_clusters"]] if cfg["n_clusters"] else list(range(cfg["k_range"][0], cfg["k_range"][1] + 1))
        if n_distinct <= min(ks):
            raise AnalyticsInputError(
                f"features have {len(x)} customer(s) with {n_distinct} distinct profile(s); "
                f"segmentation into {min(ks)}+ clusters needs more than {min(ks)}"
            )
        ks = [k for k in ks if k < n_distinct]

        if cfg["log_transform"] == "auto":
            self.log_columns_ = [
                c for c in x.columns
                if x[c].min() >= 0 and x[c].std() > 0 and float(skew(x[c].to_numpy())) > cfg["skew_threshold"]
            ]
        else:
            self.log_columns_ = list(cfg["log_transform"])
        logged = x.copy()
        for c in self.log_columns_:
            if (logged[c] < 0).any():
                raise AnalyticsInputError(f"cannot log-transform column {c!r}: it has negative values")
            logged[c] = np.log1p(logged[c])
        self.mean_ = logged.to_numpy().mean(axis=0)
        scale = logged.to_numpy().std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        z = self._transform(x)

        rng = np.random.default_rng(cfg["random_state"])
        sample = rng.choice(len(z), size=min(cfg["sample_size"], len(z)), replace=False)
        best = None
        self.silhouette_ = {}
        for k in ks:
            km = KMeans(n_clusters=k, n_init=cfg["n_init"], random_state=cfg["random_state"]).fit(z)
            labels = km.labels_
            if len(np.unique(labels[sample])) < 2:
                score = -1.0
            else:
                score = float(silhouette_score(z[sample], labels[sample]))
            self.silhouette_[k] = score
            if best is None or score > best[0] + 1e-12:
                best = (score, k, km)
        _, self.k_, km = best

        # Renumber clusters by size (largest first), ties by centre order, for stable output.
        sizes = np.bincount(km.labels_, minlength=self.k_)
        order = np.lexsort((np.arange(self.k_), -sizes))
        remap = np.empty(self.k_, dtype=int)
        remap[order] = np.arange(self.k_)
        self.centers_ = km.cluster_centers_[order]
        self.labels_ = pd.Series(remap[km.labels_], index=features.index, name="cluster")
        self.profile_ = self._profile(x, self.labels_.to_numpy())
        return self

    def _profile(self, x: pd.DataFrame, labels: np.ndarray) -> pd.DataFrame:
        cfg = self.config
        vocab = {**VOCABULARY, **{k: tuple(v) for k, v in cfg["vocabulary"].items()}}
        g = x.groupby(labels)
        prof = pd.DataFrame({"size": g.size(), "share": g.size() / len(x)})
        for c in x.columns:
            prof[f"{c}_mean"] = g[c].mean()
        names = []
        for k in range(self.k_):
            centre = self.centers_[k]
            words = []
            for j in np.argsort(-np.abs(centre), kind="stable")[:3]:
                if abs(centre[j]) < cfg["label_threshold"]:
                    break
                col = x.columns[j]
                high, low = vocab.get(col, (f"high {col}", f"low {col}"))
                words.append(high if centre[j] > 0 else low)
            names.append((", ".join(words) if words else "average") + " customers")
        seen: dict[str, int] = {}
        for i, name in enumerate(names):
            if names.count(name) > 1:
                seen[name] = seen.get(name, 0) + 1
                names[i] = f"{name} ({seen[name]})"
        prof["label"] = names
        prof.index.name = "cluster"
        return prof

    def predict(self, features: pd.DataFrame) -> pd.Series:
        """Nearest fitted cluster for each customer in ``features``.

        Returns
        -------
        pandas.Series
            Cluster number per customer, named ``cluster``.
        """
        if self.centers_ is None:
            raise AnalyticsInputError("the segmenter is not fitted: call fit() or load() first")
        z = self._transform(self._raw(features))
        d = ((z[:, None, :] - self.centers_[None, :, :]) ** 2).sum(axis=2)
        return pd.Series(d.argmin(axis=1), index=features.index, name="cluster")

    # -- persistence -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable fitted state."""
        if self.centers_ is None:
            raise AnalyticsInputError("the segmenter is not fitted")
        prof = self.profile_.reset_index()
        return {
            "kind": "CustomerSegmenter",
            "version": 1,
            "config": self.config,
            "k": self.k_,
            "silhouette": {str(k): v for k, v in self.silhouette_.items()},
            "log_columns": self.log_columns_,
            "mean": self.mean_.tolist(),
            "scale": self.scale_.tolist(),
            "centers": self.centers_.tolist(),
            "profile": prof.to_dict("list"),
        }

    def save(self, path: str | Path) -> None:
        """Write the fitted segmenter as JSON."""
        Path(path).write_text(json.dumps(self.to_dict()))

    @classmethod
    def load(cls, path: str | Path) -> CustomerSegmenter:
        """Read a segmenter written by :meth:`save` (``labels_`` is not stored)."""
        doc = json.loads(Path(path).read_text())
        if doc.get("kind") != "CustomerSegmenter":
            raise AnalyticsInputError(f"{path} does not hold a CustomerSegmenter")
        cfg = dict(doc["config"])
        seg = cls(**{**cfg, "k_range": tuple(cfg["k_range"])})
        seg.k_ = doc["k"]
        seg.silhouette_ = {int(k): v for k, v in doc["silhouette"].items()}
        seg.log_columns_ = doc["log_columns"]
        seg.mean_ = np.asarray(doc["mean"])
        seg.scale_ = np.asarray(doc["scale"])
        seg.centers_ = np.asarray(doc["centers"])
        seg.profile_ = pd.DataFrame(doc["profile"]).set_index("cluster")
        return seg
