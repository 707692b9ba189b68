"""Behavioural events from the API and the JS tracker, and CSV import jobs."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ecrm.customers.models import Customer


class Event(models.Model):
    """One behavioural event (page view, product view, add to cart, checkout, custom), stored once per id."""

    event_id = models.CharField(
        max_length=64, unique=True, help_text="Sender's id: a resend is not stored twice."
    )
    # No index of its own: event_customer_time_idx (customer, -occurred_at) serves every lookup by
    # customer, and one index fewer is one random write fewer per event on the hot ingest path.
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="events", db_index=False
    )
    anonymous_id = models.CharField(max_length=64, blank=True, db_index=True)
    type = models.CharField(max_length=32)
    name = models.CharField(max_length=128, blank=True)
    properties = models.JSONField(default=dict, blank=True)
    context = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    source = models.CharField(max_length=16, default="api")

    class Meta:
        indexes = [models.Index(fields=["customer", "-occurred_at"], name="event_customer_time_idx")]

    def __str__(self) -> str:
        return f"{self.type}:{self.name} ({self.event_id})"


class ImportKind(models.TextChoices):
    CUSTOMERS = "customers", _("Customers")
    PRODUCTS = "products", _("Products")
    ORDERS = "orders", _("Orders")
    ORDER_LINES = "order_lines", _("Order lines")


class ImportStatus(models.TextChoices):
    UPLOADED = "uploaded", _("Uploaded")
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class ImportJob(models.Model):
    """A CSV import: the file, its column mapping, progress, and the refused rows with reasons."""

    kind = models.CharField(max_length=16, choices=ImportKind.choices)
    file = models.FileField(upload_to="imports/%Y/%m/")
    original_name = models.CharField(max_length=255, blank=True)
    mapping = models.JSONField(default=dict, blank=True, help_text="{csv column: field}")
    dry_run = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=ImportStatus.choices, default=ImportStatus.UPLOADED)
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    imported_rows = models.PositiveIntegerField(default=0)
    failed_rows = models.PositiveIntegerField(default=0)
    created_rows = models.PositiveIntegerField(default=0)
    updated_rows = models.PositiveIntegerField(default=0)
    header = models.JSONField(default=list, blank=True, help_text="The file's column names, in order.")
    encoding = models.CharField(max_length=16, blank=True)
    file_size = models.PositiveBigIntegerField(default=0)
    source_path = models.CharField(
        max_length=1000,
        blank=True,
        help_text="A server-side file imported from the command line (not uploaded).",
    )
    errors = models.JSONField(default=list, blank=True, help_text="First refused rows: [{row, errors}]")
    error_file = models.FileField(upload_to="imports/errors/", blank=True)
    message = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} import #{self.pk} ({self.original_name})"
