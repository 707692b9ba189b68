"""customer.score_changed: an analytics run that moves customers between segments or churn tiers
emits one event per changed customer (found with one join), and rules act on it."""

from __future__ import annotations

from django.utils import timezone

from ecrm.analytics.models import CustomerScore, ModelRun
from ecrm.analytics.services import emit_score_changes
from ecrm.workflows.models import Notification

from .factories import customer, rule, team_with


def scores(run, rows):
    now = timezone.now()
    CustomerScore.objects.bulk_create([
        CustomerScore(run=run, customer=c, r_score=3, f_score=3, m_score=3, rfm_segment=seg, frequency=1, recency=1,
                      tenure=10, monetary_value=10, churn_band=churn, clv_band="middle", computed_at=now)
        for c, seg, churn in rows
    ])  # fmt: skip


def test_changed_tiers_fire_rules_and_unchanged_customers_do_not(cast, django_capture_on_commit_callbacks):
    team_with("Retention", "manager")
    rule("churn up", triggers=["customer.score_changed"],
         conditions={"all": [{"field": "event.changes.churn_band.new", "op": "eq", "value": "high"},
                             {"field": "customer.score.churn_band", "op": "eq", "value": "high"}]},
         actions=[{"type": "notify_team", "team": "Retention", "message": "{{ customer.name }} may leave"}])  # fmt: skip
    a, b, c = customer("A", "a@x.cn"), customer("B", "b@x.cn"), customer("C", "c@x.cn")
    old = ModelRun.objects.create(status="succeeded", is_current=False)
    new = ModelRun.objects.create(status="succeeded", is_current=True)
    scores(old, [(a, "loyal", "low"), (b, "loyal", "low"), (c, "new", "low")])
    scores(new, [(a, "loyal", "high"), (b, "loyal", "low"), (c, "at_risk", "low")])
    with django_capture_on_commit_callbacks(execute=True):
        assert emit_score_changes(new, old.pk) == 2  # a (churn) and c (segment); b unchanged
    assert list(Notification.objects.values_list("message", flat=True)) == ["A may leave"]
