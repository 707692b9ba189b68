"""Reads for core objects, each applying the permission rules."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import ApiKey, ApiKeyScope, AuditLog, FailedJob, User
from .permissions import check_perm


def api_keys_for_user(user: User) -> QuerySet[ApiKey]:
    check_perm(user, "integrations.manage")
    return ApiKey.objects.select_related("created_by").order_by("-created_at")


def tracker_key_prefix() -> str | None:
    key = (
        ApiKey.objects.filter(scope=ApiKeyScope.TRACK, revoked_at__isnull=True)
        .order_by("-created_at")
        .first()
    )
    return key.prefix if key else None


def failed_jobs_for_user(user: User) -> QuerySet[FailedJob]:
    check_perm(user, "jobs.view")
    return FailedJob.objects.filter(resolved_at__isnull=True)


def audit_entries_for_user(user: User, *, object_type: str | None = None, object_id: str | None = None):
    check_perm(user, "audit.view")
    qs = AuditLog.objects.select_related("actor")
    if object_type:
        qs = qs.filter(object_type=object_type)
    if object_id:
        qs = qs.filter(object_id=object_id)
    return qs


def home_figures(user: User) -> list[dict]:
    """Headline figures for the home page; each app contributes through `register_home_figure`."""
    figures = (provider(user) for provider in _HOME_FIGURES)
    return [f for f in figures if f is not None]


_HOME_FIGURES: list = []


def register_home_figure(provider) -> None:
    """Apps add a figure (a callable user -> {label, value, url} or None) without core importing them."""
    _HOME_FIGURES.append(provider)
