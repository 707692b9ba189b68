"""Analytics settings: defaults here, overridden per deployment by `settings.ECRM_ANALYTICS = {...}`."""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Time unit of recency/T for the purchase models: "D" (days) or "W" (weeks of 7 days). The fit
    # is invariant to it; the CDNOW validation uses weeks, as the papers do.
    "TIME_UNIT": "D",
    # Purchases of a customer in the same calendar day (shop time zone) are one purchase occasion.
    "MERGE_PERIOD": "D",
    # Holdout: the last HOLDOUT_DAYS of the window are predicted from a fit on the days before.
    "HOLDOUT_DAYS": 90,
    "CLV_MONTHS": 12,
    "DISCOUNT_RATE_MONTHLY": 0.01,
    # Orders in several currencies are refused unless every one has a rate into REPORTING_CURRENCY.
    "REPORTING_CURRENCY": "",
    "CONVERSION_RATES": {},
    # A run whose holdout error is worse than the current run's by more than this share (0.25 = 25%),
    # or whose churn AUC is lower by more than CHURN_AUC_MARGIN, does not replace the current scores.
    "BAD_RUN_MARGIN": 0.25,
    "CHURN_AUC_MARGIN": 0.05,
    "CHURN_HORIZON_DAYS": 90,
    # Bands of churn risk = 1 - P(buys again within the horizon). Most shoppers do not buy again
    # within 90 days, so the risk is high for most; the bands single out the clearest cases.
    "CHURN_HIGH": 0.9,
    "CHURN_MEDIUM": 0.7,
    "CLUSTER_K_RANGE": (2, 6),
    "RULES_MIN_SUPPORT": 0.002,
    "RULES_MIN_CONFIDENCE": 0.05,
    "RULES_KEEP": 500,
    "BATCH_SIZE": 5000,
    # Threads for the churn model (LightGBM); 1 is deterministic and leaves cores to the web workers.
    "MODEL_THREADS": 1,
    # Score rows of this many most recent runs are kept (the current run's always are).
    "KEEP_SCORED_RUNS": 2,
    # Optional models, switched off by name ("churn", "clusters", "rules", "cohorts").
    "DISABLED": (),
}


def conf(name: str) -> Any:
    return {**DEFAULTS, **getattr(settings, "ECRM_ANALYTICS", {})}[name]
