"""Read-only API over the model runs and a customer's current scores.

Integration keys with the read or write scope may read; tracking keys may not. Console users need
`analytics.view` for runs and `customers.view` for a customer's scores (as on the 360 page).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router

from ecrm.core.exceptions import NotFound, PermissionDenied
from ecrm.core.models import ApiKey, ApiKeyScope, User
from ecrm.core.permissions import check_perm
from ecrm.customers.models import Customer

from .models import CustomerScore, ModelRun
from .services import run_summary

router = Router(tags=["analytics"])


def _require(request: HttpRequest, capability: str) -> None:
    principal = request.auth
    if isinstance(principal, ApiKey):
        if principal.scope == ApiKeyScope.TRACK:
            raise PermissionDenied("A tracking key can only send events.", code="tracking_key")
        return
    if isinstance(principal, User):
        check_perm(principal, capability)
        return
    raise PermissionDenied("Not allowed.")


@router.get("/runs", response=list[dict], summary="The latest model runs (newest first)")
def list_runs(request: HttpRequest, limit: int = 20):
    _require(request, "analytics.view")
    return [run_summary(r) for r in ModelRun.objects.order_by("-id")[: max(1, min(limit, 100))]]


@router.get("/runs/current", response=dict, summary="The run whose scores the product shows")
def current_run(request: HttpRequest):
    _require(request, "analytics.view")
    run = ModelRun.objects.filter(kind="customer_models", is_current=True).first()
    if run is None:
        raise NotFound("No model run has succeeded yet.")
    return run_summary(run)


@router.get("/runs/{run_id}", response=dict, summary="One model run: parameters, holdout metrics, durations")
def get_run(request: HttpRequest, run_id: int):
    _require(request, "analytics.view")
    run = ModelRun.objects.filter(pk=run_id).first()
    if run is None:
        raise NotFound("No such model run.")
    return run_summary(run)


def score_out(s: CustomerScore) -> dict[str, Any]:
    return {
        "customer_id": s.customer_id,
        "run": s.run_id,
        "model_version": s.run.version,
        "computed_at": s.computed_at.isoformat(),
        "rfm": {"segment": s.rfm_segment, "r": s.r_score, "f": s.f_score, "m": s.m_score},
        "frequency": s.frequency,
        "recency": s.recency,
        "tenure": s.tenure,
        "time_unit": s.run.time_unit,
        "monetary_value": s.monetary_value,
        "probability_alive": s.probability_alive,
        "expected_purchases_12m": s.expected_purchases_12m,
        "clv_12m": None if s.clv_12m is None else str(s.clv_12m),
        "currency": s.currency,
        "clv_band": s.clv_band or None,
        "churn_risk": s.churn_risk,
        "churn_band": s.churn_band or None,
        "churn_reasons": [{"feature": f, "value": v} for f, v in s.churn_reasons],
        "cluster": s.cluster,
        "cluster_label": s.cluster_label or None,
    }


@router.get("/customers/{customer_id}/scores", response=dict, summary="A customer's current scores")
def customer_scores(request: HttpRequest, customer_id: int):
    _require(request, "customers.view")
    if not Customer.objects.filter(pk=customer_id).exists():
        raise NotFound("No such customer.")
    score = (
        CustomerScore.objects.select_related("run")
        .filter(customer_id=customer_id, run__is_current=True, run__kind="customer_models")
        .first()
    )
    if score is None:
        raise NotFound("This customer has no scores in the current run.", code="not_scored")
    return score_out(score)
