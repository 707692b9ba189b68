"""The models a run computes, each a step over the extracted data, calling `ecrm_analytics` only.

Core steps (RFM, BG/NBD, Gamma-Gamma) must succeed or the run fails. Optional steps (churn,
clusters, rules, cohorts) record "failed" or "not available" with the reason and leave their fields
empty: a shop too young for a churn model still gets its RFM and CLV scores, and nothing is faked.
"""

from __future__ import annotations

import datetime as dt
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ecrm_analytics import AnalyticsInputError

from .conf import conf
from .extraction import Extract

OPTIONAL_STEPS = ("churn", "clusters", "rules", "cohorts", "olap")


def jsonable(value: Any) -> Any:
    """numpy/pandas values to plain JSON (NaN and infinities become None)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, pd.Timestamp | dt.date):
        return value.isoformat()
    if isinstance(value, pd.Period):
        return str(value)
    return value


@dataclass
class Outcome:
    """What the steps produced: per-customer columns, run-level tables, parameters and metrics."""

    scores: pd.DataFrame | None = None
    results: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    durations: dict[str, float] = field(default_factory=dict)
    steps: dict[str, dict[str, str]] = field(default_factory=dict)


class Pipeline:
    """Runs the steps over one extract, with the observation end as a shop-local date."""

    def __init__(
        self, data: Extract, observation_end: dt.date, progress: Callable[[int, str], None], *, olap_dir=None
    ):
        self.data = data
        self.olap_dir = olap_dir
        self.end = observation_end
        # End of the observation day: library functions that compare times need it inclusive.
        self.end_ts = pd.Timestamp(observation_end) + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
        self.unit = conf("TIME_UNIT")
        self.merge = conf("MERGE_PERIOD")
        self.tx = data.orders[["customer_id", "placed_at", "amount"]].rename(columns={"placed_at": "date"})
        self.progress = progress
        self.out = Outcome()

    def _timed(self, name: str, fn: Callable[[], None], *, optional: bool) -> None:
        started = time.perf_counter()
        if name in conf("DISABLED"):
            self.out.steps[name] = {
                "status": "not available",
                "message": "switched off in ECRM_ANALYTICS['DISABLED']",
            }
            return
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fn()
        except AnalyticsInputError as exc:
            if not optional:
                raise
            self.out.steps[name] = {"status": "failed", "message": str(exc)}
            if name == "clv_holdout":  # the runs page shows why there is no holdout error to compare
                self.out.metrics["clv"] = {"error": str(exc)}
        except ImportError as exc:  # a missing optional dependency is "not available", not a crash
            if not optional:
                raise
            self.out.steps[name] = {"status": "not available", "message": str(exc)}
        else:
            self.out.steps.setdefault(name, {"status": "ok", "message": ""})
        finally:
            self.out.durations[name] = round(time.perf_counter() - started, 3)

    def run(self) -> Outcome:
        self.progress(20, "RFM")
        self._timed("rfm", self.rfm, optional=False)
        self.progress(35, "BG/NBD and Gamma-Gamma")
        self._timed("clv", self.clv, optional=False)
        self._timed("clv_holdout", self.clv_holdout, optional=True)
        self.progress(50, "churn")
        self._timed("churn", self.churn, optional=True)
        self.progress(60, "clusters")
        self._timed("clusters", self.clusters, optional=True)
        self.progress(65, "rules")
        self._timed("rules", self.rules, optional=True)
        self._timed("cohorts", self.cohorts, optional=True)
        self._timed("revenue", self.revenue, optional=False)
        if self.olap_dir is not None:
            self._timed("olap", self.olap, optional=True)
        return self.out

    # --- steps -----------------------------------------------------------------------------------
    def rfm(self) -> None:
        from ecrm_analytics.rfm import rfm_scores, rfm_segments, rfm_summary

        summary = rfm_summary(
            self.tx, "customer_id", "date", "amount", observation_end=self.end, time_unit=self.unit,
            merge_period=self.merge, monetary="all",
        )  # fmt: skip
        scores = rfm_scores(summary)
        scores["rfm_segment"] = rfm_segments(scores).astype(str)
        frame = pd.DataFrame(index=summary.index)
        frame["r_score"] = scores["r_score"]
        frame["f_score"] = scores["f_score"]
        frame["m_score"] = scores["m_score"]
        frame["rfm_segment"] = scores["rfm_segment"]
        frame["frequency"] = summary["frequency"]
        frame["recency"] = summary["recency"]
        frame["tenure"] = summary["T"]
        frame["monetary_value"] = summary["monetary_value"]
        self.out.scores = frame
        grid = scores.groupby(["r_score", "fm_score"]).size()
        money = summary["monetary_value"] * (summary["frequency"] + 1)
        seg = pd.DataFrame({"segment": scores["rfm_segment"], "revenue": money})
        by_segment = seg.groupby("segment").agg(customers=("revenue", "size"), revenue=("revenue", "sum"))
        self.out.results["rfm"] = jsonable({
            "grid": [{"r": r, "fm": fm, "customers": n} for (r, fm), n in grid.items()],
            "segments": [
                {"segment": s, "customers": int(row["customers"]), "revenue": round(float(row["revenue"]), 2)}
                for s, row in by_segment.sort_values("customers", ascending=False).iterrows()
            ],
        })  # fmt: skip

    def clv(self) -> None:
        from ecrm_analytics.clv import BetaGeoModel, GammaGammaModel, customer_lifetime_value
        from ecrm_analytics.clv.base import MONTH_FACTORS
        from ecrm_analytics.rfm import rfm_summary

        summary = rfm_summary(
            self.tx, "customer_id", "date", "amount", observation_end=self.end, time_unit=self.unit,
            merge_period=self.merge, monetary="repeat",
        )  # fmt: skip
        bg = BetaGeoModel(time_unit=self.unit).fit(summary)
        # Repeat buyers whose repeat purchases were all free carry no spend information for the
        # Gamma-Gamma fit (it needs positive amounts); they are left out of the fit, counted, and
        # still get a predicted spend (the population mean, shrunk by their own zero).
        zero_spend = (summary["frequency"] > 0) & (summary["monetary_value"] <= 0)
        gg = GammaGammaModel(time_unit=self.unit).fit(summary[~zero_spend])
        self.out.parameters["gamma_gamma_excluded_zero_spend"] = int(zero_spend.sum())
        months = int(conf("CLV_MONTHS"))
        horizon = months * MONTH_FACTORS[self.unit]
        scores = self.out.scores
        scores["probability_alive"] = bg.probability_alive(summary).reindex(scores.index)
        scores["expected_purchases_12m"] = bg.predict_purchases(summary, t=horizon).reindex(scores.index)
        clv = customer_lifetime_value(
            bg, gg, summary, months=months, discount_rate=float(conf("DISCOUNT_RATE_MONTHLY"))
        )
        scores["clv_12m"] = clv.reindex(scores.index)
        predicted = scores[["probability_alive", "expected_purchases_12m", "clv_12m"]].to_numpy(
            dtype="float64"
        )
        bad = ~np.isfinite(predicted).all(axis=1)
        if bad.any():
            # Degenerate fits (e.g. customers who all buy alike and never drop out send r, alpha or b
            # to infinity) give NaN predictions: refuse rather than store numbers nobody can trust.
            fmt = ", ".join(f"{k}={v:.4g}" for k, v in {**bg.params_, **gg.params_}.items())
            raise AnalyticsInputError(
                f"the lifetime-value predictions are not finite for {int(bad.sum())} of {len(bad)} customers "
                f"(fitted {fmt}): the data does not identify the models (do customers differ in how often "
                "they buy, how much they spend, and do some stop buying?)"
            )
        q = scores["clv_12m"].rank(pct=True, method="max")
        scores["clv_band"] = np.select([q > 0.9, q > 0.7, q > 0.3], ["top", "high", "middle"], "low")
        self.out.parameters["bgnbd"] = jsonable(bg.params_)
        self.out.parameters["gamma_gamma"] = jsonable(gg.params_)
        self.out.parameters["bgnbd_fit"] = jsonable(bg.fit_diagnostics_)
        self.out.parameters["gamma_gamma_fit"] = jsonable(gg.fit_diagnostics_)
        values = scores["clv_12m"].to_numpy()
        # CLV is long-tailed: bins of equal width on a log scale show its shape (equal-width bins
        # put nearly everyone in the first one; quantile bins are flat by construction).
        top = float(values.max()) if len(values) else 0.0
        edges = np.expm1(np.linspace(0.0, np.log1p(max(top, 1.0)), 21))
        edges[-1] = max(edges[-1], top)
        counts, edges = np.histogram(values, bins=edges)
        self.out.results["clv"] = jsonable({
            "histogram": [{"from": round(a, 2), "to": round(b, 2), "customers": n}
                          for a, b, n in zip(edges[:-1], edges[1:], counts, strict=True)],
            "total": round(float(values.sum()), 2),
            "mean": round(float(values.mean()), 2),
            "months": months,
        })  # fmt: skip

    def clv_holdout(self) -> None:
        """Fit on the window minus the last HOLDOUT_DAYS and predict those days, per customer."""
        from ecrm_analytics.clv import BetaGeoModel, GammaGammaModel
        from ecrm_analytics.rfm import calibration_and_holdout_data

        cal_end = self.end - dt.timedelta(days=int(conf("HOLDOUT_DAYS")))
        self.out.metrics["calibration_end"] = cal_end.isoformat()
        cal = calibration_and_holdout_data(
            self.tx, "customer_id", "date", "amount", calibration_end=cal_end, observation_end=self.end,
            time_unit=self.unit, merge_period=self.merge,
        )  # fmt: skip
        fit_frame = cal.rename(columns={"frequency_cal": "frequency", "recency_cal": "recency", "T_cal": "T",
                                        "monetary_value_cal": "monetary_value"})  # fmt: skip
        bg = BetaGeoModel(time_unit=self.unit).fit(fit_frame)
        predicted = bg.predict_purchases(fit_frame, t=float(cal["duration_holdout"].iloc[0])).to_numpy()
        actual = cal["frequency_holdout"].to_numpy()
        err = predicted - actual
        metrics: dict[str, Any] = {
            "customers": len(cal),
            "actual_purchases": float(actual.sum()),
            "predicted_purchases": float(predicted.sum()),
            "total_error_pct": float(100 * (predicted.sum() - actual.sum()) / actual.sum())
            if actual.sum()
            else None,
            "mae": float(np.abs(err).mean()),
            "rmse": float(np.sqrt((err**2).mean())),
            "bgnbd_params": bg.params_,
        }
        try:
            gg = GammaGammaModel().fit(
                fit_frame[~((fit_frame["frequency"] > 0) & (fit_frame["monetary_value"] <= 0))]
            )
        except AnalyticsInputError as exc:
            metrics["spend_error"] = str(exc)
        else:
            both = (fit_frame["frequency"] > 0) & (cal["frequency_holdout"] > 0)
            if both.any():
                spend = gg.expected_average_spend(fit_frame[both]).to_numpy()
                real = cal.loc[both, "monetary_value_holdout"].to_numpy()
                metrics["spend_mae"] = float(np.abs(spend - real).mean())
                metrics["spend_customers"] = int(both.sum())
        self.out.metrics["clv"] = jsonable(metrics)

    def churn(self) -> None:
        from ecrm_analytics.churn import PropensityModel

        horizon = int(conf("CHURN_HORIZON_DAYS"))
        end = self.end_ts
        model = PropensityModel(horizon_days=horizon, n_jobs=int(conf("MODEL_THREADS")))
        model.fit(
            self.tx, train_cutoff=end - pd.Timedelta(days=2 * horizon), holdout_cutoff=end - pd.Timedelta(days=horizon),
            observation_end=end,
        )  # fmt: skip
        scored = model.predict(self.tx, cutoff=end)
        scores = self.out.scores
        risk = scored["churn_risk"].reindex(scores.index)
        scores["churn_risk"] = risk
        high, medium = float(conf("CHURN_HIGH")), float(conf("CHURN_MEDIUM"))
        scores["churn_band"] = np.select(
            [risk >= high, risk >= medium, risk.notna()], ["high", "medium", "low"], ""
        )
        reason_cols = [c for c in scored.columns if c.startswith("reason_")]
        reasons = scored[reason_cols].reindex(scores.index)
        # The library gives "feature=value" text; store [feature, value] pairs so the page can say
        # them in the reader's language (see CustomerScore.reasons_display).
        scores["churn_reasons"] = [
            [r.split("=", 1) for r in row if isinstance(r, str) and "=" in r]
            for row in reasons.itertuples(index=False, name=None)
        ]
        metrics = dict(model.metrics_)
        metrics.pop("reliability", None)
        self.out.metrics["churn"] = jsonable(metrics)
        self.out.results["churn_reliability"] = jsonable(model.metrics_.get("reliability", []))
        self.out.parameters["churn"] = jsonable({"model": "LightGBM", **model.config.__dict__})

    def clusters(self) -> None:
        from ecrm_analytics.clustering import CustomerSegmenter
        from ecrm_analytics.features import customer_features, prepare_transactions

        prepared = prepare_transactions(self.tx, observation_end=self.end_ts)
        features = customer_features(prepared, self.end_ts)
        lo, hi = conf("CLUSTER_K_RANGE")
        seg = CustomerSegmenter(k_range=(int(lo), int(hi))).fit(features)
        scores = self.out.scores
        labels = seg.labels_.reindex(scores.index)
        profile = seg.profile_
        scores["cluster"] = labels
        scores["cluster_label"] = labels.map(profile["label"]).fillna("")
        self.out.parameters["clusters"] = jsonable({"k": seg.k_, "silhouette": seg.silhouette_,
                                                     "columns": seg.config["columns"]})  # fmt: skip
        self.out.results["clusters"] = jsonable(
            [{"cluster": int(k), **{c: row[c] for c in profile.columns}} for k, row in profile.iterrows()]
        )

    def rules(self) -> None:
        from ecrm_analytics.association import also_bought, association_rules, frequent_itemsets

        lines = self.data.lines
        if lines.empty:
            raise AnalyticsInputError("no order lines in the window: basket rules need products per order")
        items = frequent_itemsets(
            lines, basket_col="order_id", item_col="sku", quantity_col="quantity",
            min_support=float(conf("RULES_MIN_SUPPORT")), max_len=2,
        )  # fmt: skip
        rules = association_rules(items, min_confidence=float(conf("RULES_MIN_CONFIDENCE")))
        keep = rules.head(int(conf("RULES_KEEP")))
        rows = [
            {
                "antecedent": ", ".join(map(str, r.antecedent)),
                "consequent": ", ".join(map(str, r.consequent)),
                "support": r.support, "confidence": r.confidence, "lift": r.lift, "count": r.count,
            }
            for r in keep.itertuples(index=False)
        ]  # fmt: skip
        also = also_bought(rules, top_k=5) if len(rules) else pd.DataFrame()
        self.out.results["rules"] = jsonable(
            {"baskets": items.n_baskets, "rules": rows, "total_rules": len(rules)}
        )
        self.out.results["also_bought"] = jsonable(also.to_dict("records"))
        self.out.parameters["rules"] = {"min_support": float(conf("RULES_MIN_SUPPORT")),
                                        "min_confidence": float(conf("RULES_MIN_CONFIDENCE")), "max_len": 2}  # fmt: skip

    def cohorts(self) -> None:
        from ecrm_analytics.cohorts import cohort_tables

        t = cohort_tables(self.tx, observation_end=self.end_ts)

        def matrix(df: pd.DataFrame) -> list[list[float | None]]:
            return jsonable(df.round(4).to_numpy().tolist())

        self.out.results["cohorts"] = {
            "cohorts": [str(p) for p in t.retention.index],
            "months": [int(k) for k in t.retention.columns],
            "sizes": jsonable(t.sizes.tolist()),
            "retention": matrix(t.retention),
            "revenue_per_customer": matrix(t.revenue_per_customer),
        }

    def revenue(self) -> None:
        orders = self.data.orders
        month = orders["placed_at"].dt.to_period("M")
        g = orders.groupby(month).agg(revenue=("amount", "sum"), orders=("amount", "size"),
                                      customers=("customer_id", "nunique"))  # fmt: skip
        self.out.results["revenue"] = jsonable([
            {"month": str(r.Index), "revenue": round(float(r.revenue), 2), "orders": int(r.orders),
             "customers": int(r.customers)}
            for r in g.itertuples()
        ])  # fmt: skip

    def olap(self) -> None:
        """Write the cube's inputs as Parquet, so the pivot page loads them without touching the
        database. An order imported without lines gets one line of its amount in category
        "uncategorised", so that the cube's revenue is the orders' revenue."""
        orders = self.data.orders
        lines = self.data.lines[["order_id", "category", "quantity", "amount"]]
        bare = orders.loc[~orders["order_id"].isin(lines["order_id"]), ["order_id", "amount"]]
        if len(bare):
            filler = bare.assign(category="uncategorised", quantity=1.0)[
                ["order_id", "category", "quantity", "amount"]
            ]
            lines = pd.concat([lines, filler], ignore_index=True)
        segments = self.out.scores["rfm_segment"] if self.out.scores is not None else None
        self.olap_dir.mkdir(parents=True, exist_ok=True)
        cube_orders = orders.rename(columns={"placed_at": "order_date"})[
            ["order_id", "customer_id", "order_date", "channel", "country", "city"]
        ]
        cube_orders.to_parquet(self.olap_dir / "orders.parquet", index=False)
        lines.to_parquet(self.olap_dir / "lines.parquet", index=False)
        if segments is not None:
            segments.rename("segment").rename_axis("customer_id").reset_index().to_parquet(
                self.olap_dir / "customers.parquet", index=False
            )
        self.out.results["olap"] = {"dir": str(self.olap_dir), "orders": len(cube_orders), "lines": len(lines),
                                    "synthetic_lines": len(bare)}  # fmt: skip
