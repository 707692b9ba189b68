"""Users, teams, roles, API keys, the audit log and the dead-letter list of failed jobs."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class TimeStampedModel(models.Model):
    """Abstract base with creation and update times."""

    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Role(models.TextChoices):
    ADMIN = "admin", _("Admin")
    MANAGER = "manager", _("Manager")
    AGENT = "agent", _("Agent")
    MARKETER = "marketer", _("Marketer")
    ANALYST = "analyst", _("Analyst")
    NONE = "none", _("No access")


class Team(TimeStampedModel):
    """A group of users that work a queue together (service, sales, warehouse, finance...)."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    description = models.TextField(_("description"), blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    """A console user: one role decides what they may see and do; teams scope agents' work."""

    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.AGENT)
    teams = models.ManyToManyField(Team, blank=True, related_name="members", verbose_name=_("teams"))
    language = models.CharField(_("language"), max_length=10, blank=True)

    @property
    def is_admin_role(self) -> bool:
        return self.role == Role.ADMIN or self.is_superuser


class ApiKeyScope(models.TextChoices):
    READ = "read", _("Read")
    WRITE = "write", _("Read and write")
    TRACK = "track", _("Browser tracking only")


class ApiKey(TimeStampedModel):
    """An integration key: the secret is shown once and stored only as a SHA-256 hash."""

    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(max_length=12, unique=True, help_text="First characters, to recognise a key.")
    key_hash = models.CharField(max_length=64, unique=True)
    scope = models.CharField(_("scope"), max_length=8, choices=ApiKeyScope.choices, default=ApiKeyScope.READ)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def allows_write(self) -> bool:
        return self.scope == ApiKeyScope.WRITE

    def allows_track(self) -> bool:
        return self.scope in (ApiKeyScope.WRITE, ApiKeyScope.TRACK)


class AuditLog(models.Model):
    """Append-only record of a service write: who, what, and the values before and after."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_label = models.CharField(
        max_length=150, blank=True, help_text="User name or API key name at the time."
    )
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id", "-at"], name="audit_object_idx")]

    def __str__(self) -> str:
        return (
            f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.object_type}#{self.object_id}"
        )

    def save(self, *args, **kwargs):
        # Append-only: an entry once written is never changed.
        if self.pk is not None:
            raise ValueError("Audit log entries are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Audit log entries are append-only")


class FailedJob(models.Model):
    """Dead-letter list: a background job that failed after its last retry."""

    task_id = models.CharField(max_length=64, unique=True)
    task_name = models.CharField(max_length=200)
    args = models.JSONField(default=list)
    kwargs = models.JSONField(default=dict)
    error = models.TextField()
    retries = models.PositiveIntegerField(default=0)
    failed_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-failed_at"]

    def __str__(self) -> str:
        return f"{self.task_name} ({self.task_id})"


class WorkerHeartbeat(models.Model):
    """Last time a background worker proved it was alive by running a job (for the health check)."""

    name = models.CharField(max_length=64, unique=True)
    beat_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} @ {self.beat_at:%Y-%m-%d %H:%M:%S}"


class JobState(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    RETRYING = "retrying", _("Failed, will retry")
    FAILED = "failed", _("Failed")
    REQUEUED = "requeued", _("Returned to the queue")


class JobClaim(models.Model):
    """Ledger row of one background job: which worker runs it and whether it finished (see core/jobs.py)."""

    task_id = models.CharField(max_length=64, unique=True)
    task_name = models.CharField(max_length=200)
    args = models.JSONField(default=list)
    kwargs = models.JSONField(default=dict)
    # The queue message exactly as Huey serialised it, so recovery re-sends the very same job.
    message = models.BinaryField()
    priority = models.IntegerField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=JobState.choices, default=JobState.QUEUED)
    attempt = models.PositiveIntegerField(default=0)  # how many times a worker started it
    recoveries = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=64, blank=True)  # host:pid:boot id of the process running it
    host = models.CharField(max_length=100, blank=True)
    pid = models.IntegerField(null=True, blank=True)
    queued_at = models.DateTimeField(default=timezone.now)  # last sent to the queue
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    requeued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # Recovery and the health check look up claims by state; pruning looks up old done ones.
        indexes = [models.Index(fields=["state", "queued_at"], name="core_jobclaim_state_idx")]

    def __str__(self) -> str:
        return f"{self.task_name} ({self.task_id}) {self.state}"
