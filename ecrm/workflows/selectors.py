"""Reads of workflows, each applying the permission rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet

from ecrm.core.exceptions import NotFound
from ecrm.core.models import ApiKey, User
from ecrm.core.permissions import check_perm, has_perm

from .models import Notification, Rule, RuleRun, Task, TaskStatus


def _view(actor: Any) -> None:
    if isinstance(actor, ApiKey):
        return  # any key may read (the API edge checks the key)
    check_perm(actor, "workflows.view")


def rules_for_user(actor: Any) -> QuerySet[Rule]:
    _view(actor)
    return Rule.objects.order_by("position", "id")


def access_rule_for_user(actor: Any, rule_id: int) -> Rule:
    _view(actor)
    rule = Rule.objects.filter(pk=rule_id).first()
    if rule is None:
        raise NotFound("No such rule.")
    return rule


@dataclass
class RunFilters:
    rule: int | None = None
    status: str = ""
    event: str = ""
    subject_type: str = ""
    subject_id: int | None = None

    def apply(self, qs: QuerySet[RuleRun]) -> QuerySet[RuleRun]:
        if self.rule:
            qs = qs.filter(rule_id=self.rule)
        if self.status:
            qs = qs.filter(status=self.status)
        if self.event:
            qs = qs.filter(event_name=self.event)
        if self.subject_type:
            qs = qs.filter(subject_type=self.subject_type)
        if self.subject_id:
            qs = qs.filter(subject_id=self.subject_id)
        return qs


def runs_for_user(
    actor: Any, filters: RunFilters, *, before: int | None = None, limit: int = 50
) -> list[RuleRun]:
    """Newest first, keyset pages by id (`before` = the last id of the previous page)."""
    _view(actor)
    qs = filters.apply(RuleRun.objects.all())
    if before:
        qs = qs.filter(pk__lt=before)
    return list(qs.order_by("-id")[: max(1, min(limit, 200))])


def tasks_for_user(user: Any, *, status: str = "open", mine: bool = False) -> QuerySet[Task]:
    """Managers (workflows.view) see every task; others the tasks of their teams and their own."""
    if isinstance(user, ApiKey):
        qs = Task.objects.all()
    else:
        if not has_perm(user, "workflows.view"):
            check_perm(user, "service.view")  # agents: their own and their teams' tasks
            mine = True
        qs = Task.objects.all()
        if mine:
            qs = qs.filter(Q(assignee=user) | Q(team__in=user.teams.all()))
    if status in TaskStatus.values:
        qs = qs.filter(status=status)
    return qs.select_related("team", "assignee").order_by("status", "due_at", "id")


def notifications_for_user(user: User, *, unread: bool = False) -> QuerySet[Notification]:
    qs = Notification.objects.filter(user=user)
    if unread:
        qs = qs.filter(read_at__isnull=True)
    return qs.select_related("team").order_by("-created_at", "-id")
