"""Outgoing webhooks: endpoints that subscribe to domain events, the delivery log, and the admin-managed
part of the outbound allow-list (the env part is `ECRM_OUTBOUND_ALLOWLIST`)."""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ecrm.core.models import TimeStampedModel


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class Endpoint(TimeStampedModel):
    """A receiver URL in another system (ERP, warehouse, ...) and the events it subscribes to."""

    name = models.CharField(_("name"), max_length=120)
    url = models.URLField(_("URL"), max_length=1000)
    secret = models.CharField(max_length=100, default=new_secret)
    # exact names from ecrm.core.events.EVENT_NAMES, prefixes ending in "." ("ticket."), or "*" for all
    events = models.JSONField(_("events"), default=list, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def subscribes_to(self, event_name: str) -> bool:
        return matches(self.events, event_name)


def matches(patterns: list[str], event_name: str) -> bool:
    for p in patterns:
        if p == "*" or p == event_name or (p.endswith(".") and event_name.startswith(p)):
            return True
    return False


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed, will retry")
    GIVING_UP = "giving_up", _("Gave up")


class Delivery(models.Model):
    """One event (or test, or rule action) to send to one endpoint, with its retry state."""

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)  # X-Ecrm-Delivery
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.CharField(max_length=64, blank=True)
    event_name = models.CharField(max_length=64)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=12, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    cycle_start = models.PositiveIntegerField(
        default=0
    )  # `attempts` when the current retry cycle began (replay)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # the retry sweep: due deliveries in order
            models.Index(fields=["status", "next_attempt_at"], name="webhooks_due_idx"),
            models.Index(fields=["endpoint", "-created_at"], name="webhooks_ep_log_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_name} → {self.endpoint_id} ({self.status})"


class DeliveryAttempt(models.Model):
    """One HTTP attempt of a delivery: what was sent and what came back (shown in the log's detail)."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    manual = models.BooleanField(default=False)  # a replay from the console or API
    started_at = models.DateTimeField(default=timezone.now)
    url = models.CharField(max_length=1000)
    request_headers = models.JSONField(default=dict)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_headers = models.JSONField(default=dict)
    response_excerpt = models.TextField(blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}"


class AllowedDestination(models.Model):
    """An admin-approved outbound destination that the SSRF guard would otherwise refuse (an ERP on the
    office network): a host, host:port, IP, IP:port or CIDR."""

    value = models.CharField(_("destination"), max_length=200, unique=True)
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["value"]

    def __str__(self) -> str:
        return self.value
