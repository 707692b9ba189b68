"""Automation rules (when an event fires, if conditions hold, then run actions), their run log,
and what the actions leave behind for people: notifications and tasks."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ecrm.core.models import Team


class Rule(models.Model):
    """An automation rule: triggers (event names or "schedule"), a condition tree and actions, run in `position` order."""

    name = models.CharField(_("name"), max_length=120, unique=True)
    description = models.TextField(_("description"), blank=True)
    # event names from ecrm.core.events.EVENT_NAMES, or "schedule" (see schedule_* below)
    triggers = models.JSONField(_("triggers"), default=list)
    # {"all": [...]} / {"any": [...]} nesting; leaves {"field": "ticket.priority", "op": "eq", "value": "high"}
    conditions = models.JSONField(_("conditions"), default=dict, blank=True)
    # [{"type": "notify_team", "team": "Warehouse", "message": "..."}, ...]
    actions = models.JSONField(_("actions"), default=list)
    # a scheduled rule queries its subjects ("ticket", "conversation", "order", "customer") every N minutes
    schedule_subject = models.CharField(_("scheduled subject"), max_length=16, blank=True)
    schedule_every = models.PositiveIntegerField(_("every (minutes)"), default=60)
    last_scheduled_at = models.DateTimeField(null=True, blank=True)
    position = models.PositiveIntegerField(_("position"), default=0)
    is_active = models.BooleanField(_("active"), default=True)
    stop_processing = models.BooleanField(_("stop further rules when it matches"), default=False)
    # counters: non-matches are only counted (kept cheap), matches and errors also get a RuleRun row
    evaluated_count = models.PositiveBigIntegerField(default=0)
    matched_count = models.PositiveBigIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name


class RunStatus(models.TextChoices):
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")
    REFUSED = "refused", _("Refused (loop protection)")


class RuleRun(models.Model):
    """One rule that matched an event (or failed, or was refused by loop protection): what it did and how long it took."""

    rule = models.ForeignKey(Rule, null=True, on_delete=models.SET_NULL, related_name="runs")
    rule_name = models.CharField(max_length=120)
    event_name = models.CharField(max_length=40)
    event_id = models.CharField(max_length=32, blank=True)
    subject_type = models.CharField(max_length=16, blank=True)
    subject_id = models.BigIntegerField(null=True, blank=True)
    chain = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(max_length=8, choices=RunStatus.choices)
    # [{"type": "add_tag", "ok": true, "result": "..."}]
    actions = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.FloatField(default=0)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["-at", "-id"], name="wf_run_recent"),
            models.Index(fields=["rule", "subject_type", "subject_id", "-at"], name="wf_run_rule_subject"),
        ]

    def __str__(self) -> str:
        return f"{self.rule_name} on {self.event_name} {self.subject_type}#{self.subject_id}: {self.status}"


class Notification(models.Model):
    """An in-app notice for one person, left by a rule's "notify a team" action."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    rule = models.ForeignKey(Rule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    message = models.TextField()
    subject_type = models.CharField(max_length=16, blank=True)
    subject_id = models.BigIntegerField(null=True, blank=True)
    url = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"], name="wf_notice_user")]

    def __str__(self) -> str:
        return self.message[:60]


class TaskStatus(models.TextChoices):
    OPEN = "open", _("Open")
    DONE = "done", _("Done")


class Task(models.Model):
    """A to-do created by a rule: for a team or a person, due at a time, linked to the record it is about."""

    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    due_at = models.DateTimeField(_("due"), null=True, blank=True)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    subject_type = models.CharField(max_length=16, blank=True)
    subject_id = models.BigIntegerField(null=True, blank=True)
    url = models.CharField(max_length=300, blank=True)
    rule = models.ForeignKey(Rule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=8, choices=TaskStatus.choices, default=TaskStatus.OPEN)
    created_at = models.DateTimeField(default=timezone.now)
    done_at = models.DateTimeField(null=True, blank=True)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["status", "due_at", "id"]
        indexes = [models.Index(fields=["status", "due_at"], name="wf_task_open_due")]

    def __str__(self) -> str:
        return self.title
