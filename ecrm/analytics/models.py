"""Model runs and what they produce: per-customer scores, and per-run tables (rules, cohorts, clusters).

Scores are keyed by (run, customer) rather than overwritten in place: a run writes its own rows and
only becomes current once everything is stored and its holdout metrics pass, so a failed or worse
run never leaves the product half-updated, and the previous good scores stay readable meanwhile.
Older runs' score rows are purged (see `services.purge_old_scores`).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from ecrm.customers.models import Customer

MONEY = {"max_digits": 14, "decimal_places": 2}


class RunStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    REJECTED = "rejected", _("Rejected (worse than the current run)")


class RunTrigger(models.TextChoices):
    SCHEDULE = "schedule", _("Nightly schedule")
    CONSOLE = "console", _("Console")
    CLI = "cli", _("Command line")


class ModelRun(models.Model):
    """One run of the customer models: its window, parameters, metrics, timings and outcome."""

    kind = models.CharField(max_length=32, default="customer_models")
    version = models.CharField(_("version"), max_length=64, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    trigger = models.CharField(max_length=16, choices=RunTrigger.choices, default=RunTrigger.SCHEDULE)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    is_current = models.BooleanField(_("current"), default=False)
    # The data window, in the shop's time zone (TIME_ZONE): orders on or before observation_end.
    observation_end = models.DateField(_("observation end"), null=True, blank=True)
    calibration_end = models.DateField(null=True, blank=True)
    holdout_end = models.DateField(null=True, blank=True)
    time_unit = models.CharField(max_length=1, default="D")
    currency = models.CharField(max_length=3, blank=True)
    parameters = models.JSONField(_("parameters"), default=dict, blank=True)
    metrics = models.JSONField(_("holdout metrics"), default=dict, blank=True)
    durations = models.JSONField(default=dict, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    steps = models.JSONField(
        default=dict, blank=True, help_text="Per model: ok / failed / not available, with why"
    )
    progress = models.PositiveSmallIntegerField(default=0)
    stage = models.CharField(max_length=100, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind"], condition=models.Q(is_current=True), name="one_current_run_per_kind"
            )
        ]

    def __str__(self) -> str:
        return f"run #{self.pk} {self.status}"

    @property
    def total_seconds(self) -> float | None:
        return self.durations.get("total") if self.durations else None

    @property
    def is_active(self) -> bool:
        return self.status in (RunStatus.QUEUED, RunStatus.RUNNING)


class ChurnBand(models.TextChoices):
    LOW = "low", _("Low")
    MEDIUM = "medium", _("Medium")
    HIGH = "high", _("High")


class ClvBand(models.TextChoices):
    TOP = "top", _("Top 10%")
    HIGH = "high", _("Next 20%")
    MIDDLE = "middle", _("Middle 40%")
    LOW = "low", _("Bottom 30%")


class CustomerScore(models.Model):
    """A customer's scores from one run (the current run's rows are what the product shows)."""

    run = models.ForeignKey(ModelRun, on_delete=models.CASCADE, related_name="scores")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="analytics_scores")
    r_score = models.PositiveSmallIntegerField()
    f_score = models.PositiveSmallIntegerField()
    m_score = models.PositiveSmallIntegerField()
    rfm_segment = models.CharField(_("RFM segment"), max_length=32)
    frequency = models.FloatField(help_text="repeat purchase occasions")
    recency = models.FloatField(help_text="first to last purchase, in the run's time unit")
    tenure = models.FloatField(help_text="T: first purchase to the observation end, in the run's time unit")
    monetary_value = models.FloatField(help_text="mean spend per purchase occasion")
    probability_alive = models.FloatField(null=True, blank=True)
    expected_purchases_12m = models.FloatField(null=True, blank=True)
    clv_12m = models.DecimalField(_("CLV 12 months"), **MONEY, null=True, blank=True)
    clv_band = models.CharField(max_length=8, choices=ClvBand.choices, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    churn_risk = models.FloatField(null=True, blank=True)
    churn_band = models.CharField(max_length=8, choices=ChurnBand.choices, blank=True)
    churn_reasons = models.JSONField(default=list, blank=True)
    cluster = models.SmallIntegerField(null=True, blank=True)
    cluster_label = models.CharField(max_length=120, blank=True)
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "customer"], name="uniq_score_run_customer")]
        indexes = [
            models.Index(fields=["customer", "run"], name="score_customer_run_idx"),
            models.Index(fields=["run", "rfm_segment"], name="score_run_segment_idx"),
            models.Index(fields=["run", "churn_band"], name="score_run_churn_band_idx"),
            models.Index(fields=["run", "clv_band"], name="score_run_clv_band_idx"),
            models.Index(fields=["run", "-churn_risk"], name="score_run_churn_idx"),
            models.Index(fields=["run", "-clv_12m"], name="score_run_clv_idx"),
            models.Index(fields=["run", "cluster"], name="score_run_cluster_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} @ run {self.run_id}: {self.rfm_segment}"

    @property
    def reasons_display(self) -> list[str]:
        """The churn reasons in the reader's language: [feature, value] pairs made into phrases."""
        out = []
        for pair in self.churn_reasons or []:
            if not isinstance(pair, list | tuple) or len(pair) != 2:
                continue
            feature, raw = pair
            template = REASON_TEXT.get(feature)
            try:
                value = float(raw)
            except (TypeError, ValueError):
                template, value = None, raw
            out.append(str(template) % {"v": value} if template else f"{feature} = {raw}")
        return out


# What each behavioural feature means, as a churn reason (`%(v)` is its value for the customer).
REASON_TEXT = {
    "recency_days": _("%(v).0f days since the last order"),
    "tenure_days": _("customer for %(v).0f days"),
    "t_x_days": _("%(v).0f days between first and last order"),
    "mean_gap_days": _("%(v).0f days between orders on average"),
    "revenue_total": _("%(v).2f spent in total"),
    "revenue_mean": _("%(v).2f per order on average"),
    "n_orders": _("%(v).0f orders"),
    "frequency": _("%(v).0f repeat purchase days"),
    "orders_90d": _("%(v).0f orders in the last 90 days"),
    "revenue_90d": _("%(v).2f spent in the last 90 days"),
    "orders_365d": _("%(v).0f orders in the last 365 days"),
    "return_rate": _("%(v).2f of spend returned"),
}


class RunResult(models.Model):
    """A table a run produced, stored as JSON: rules, cohorts, cluster profiles, revenue series."""

    run = models.ForeignKey(ModelRun, on_delete=models.CASCADE, related_name="results")
    name = models.CharField(max_length=64)
    data = models.JSONField(default=dict)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "name"], name="uniq_run_result")]

    def __str__(self) -> str:
        return f"run {self.run_id}: {self.name}"
