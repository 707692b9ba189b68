"""Role-based capabilities. Selectors and services call `check_perm`; templates only hide what is refused."""

from __future__ import annotations

from typing import Any

from .exceptions import PermissionDenied
from .models import Role

ALL_STAFF = {Role.ADMIN, Role.MANAGER, Role.AGENT, Role.MARKETER, Role.ANALYST}

CAPABILITIES: dict[str, set[str]] = {
    "customers.view": ALL_STAFF,
    "customers.edit": {Role.ADMIN, Role.MANAGER, Role.AGENT},
    "customers.merge": {Role.ADMIN, Role.MANAGER},
    "customers.export": {Role.ADMIN, Role.MANAGER, Role.ANALYST, Role.MARKETER},
    "customers.configure": {Role.ADMIN},
    "commerce.view": ALL_STAFF,
    "commerce.edit": {Role.ADMIN, Role.MANAGER},
    "imports.run": {Role.ADMIN, Role.MANAGER},
    "integrations.manage": {Role.ADMIN},
    "jobs.view": {Role.ADMIN},
    "audit.view": {Role.ADMIN, Role.MANAGER},
    "analytics.view": {Role.ADMIN, Role.MANAGER, Role.ANALYST},
    # contact center: agents see their teams' work (selectors scope it); managers see everything
    "conversations.view": {Role.ADMIN, Role.MANAGER, Role.AGENT},
    "conversations.reply": {Role.ADMIN, Role.MANAGER, Role.AGENT},
    "conversations.view_all": {Role.ADMIN, Role.MANAGER},
    "conversations.configure": {Role.ADMIN},
    "service.view": {Role.ADMIN, Role.MANAGER, Role.AGENT},
    "service.edit": {Role.ADMIN, Role.MANAGER, Role.AGENT},
    "service.configure": {Role.ADMIN, Role.MANAGER},
    "service.reports": {Role.ADMIN, Role.MANAGER},
    "surveys.send": {Role.ADMIN, Role.MANAGER, Role.MARKETER},
    "knowledge.edit": {Role.ADMIN, Role.MANAGER, Role.AGENT},
    "knowledge.publish": {Role.ADMIN, Role.MANAGER},
    # central controller: agents set their own presence; managers watch queues; admins configure
    "routing.view": {Role.ADMIN, Role.MANAGER},
    "routing.configure": {Role.ADMIN, Role.MANAGER},
    "workflows.view": {Role.ADMIN, Role.MANAGER},
    "workflows.configure": {Role.ADMIN},
    "webhooks.manage": {Role.ADMIN},
}


def has_perm(user: Any, capability: str) -> bool:
    if user is None or not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return False
    if getattr(user, "is_superuser", False):
        return True
    return user.role in CAPABILITIES[capability]


def check_perm(user: Any, capability: str) -> None:
    if not has_perm(user, capability):
        raise PermissionDenied("You do not have permission to do that.", code=f"forbidden:{capability}")
