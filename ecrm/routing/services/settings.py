"""Routing settings (policy, weights, timeouts) and queues."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from ecrm.core.audit import record_audit
from ecrm.core.exceptions import NotFound, ValidationFailed
from ecrm.core.models import Team, User
from ecrm.core.permissions import check_perm

from ..models import CAPACITY_CHANNELS, Policy, Queue, RoutingSettings
from .profiles import parse_skills

MAX_WEIGHT = 100.0


def get_settings() -> RoutingSettings:
    settings, _ = RoutingSettings.objects.get_or_create(pk=1)
    return settings


def do_update_settings(*, actor: User, changes: dict[str, Any]) -> RoutingSettings:
    """Change the policy, the weights (0..100) and the timeouts (minutes)."""
    check_perm(actor, "routing.configure")
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for key, value in changes.items():
        if key == "policy":
            if value not in Policy.values:
                errors["policy"] = f"one of {', '.join(Policy.values)}"
            clean["policy"] = value
        elif key.startswith("weight_") and key[7:] in RoutingSettings.WEIGHT_FIELDS:
            try:
                w = float(value)
            except (TypeError, ValueError):
                errors[key] = "not a number"
                continue
            if not 0 <= w <= MAX_WEIGHT:
                errors[key] = f"between 0 and {MAX_WEIGHT:g}"
            clean[key] = w
        elif key in ("no_response_minutes", "idle_away_minutes", "idle_offline_minutes"):
            try:
                m = int(value)
            except (TypeError, ValueError):
                errors[key] = "not a whole number"
                continue
            if not 1 <= m <= 24 * 60:
                errors[key] = "between 1 and 1440 minutes"
            clean[key] = m
        elif key == "enabled":
            clean[key] = bool(value)
        else:
            errors[key] = "cannot be changed"
    if not errors and ("idle_away_minutes" in clean or "idle_offline_minutes" in clean):
        current = get_settings()
        away = clean.get("idle_away_minutes", current.idle_away_minutes)
        off = clean.get("idle_offline_minutes", current.idle_offline_minutes)
        if off < away:
            errors["idle_offline_minutes"] = "must not be shorter than the time to away"
    if errors:
        raise ValidationFailed("The routing settings are not valid.", fields=errors)
    with transaction.atomic():
        get_settings()
        settings = RoutingSettings.objects.select_for_update().get(pk=1)
        before = {k: getattr(settings, k) for k in clean}
        for key, value in clean.items():
            setattr(settings, key, value)
        settings.save(update_fields=[*clean, "updated_at"])
        record_audit(actor=actor, action="routing.settings", obj=settings, before=before, after=clean)
    return settings


def _clean_queue(data: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, str] = {}
    name = (data.get("name") or "").strip()
    if not name or len(name) > 120:
        errors["name"] = "Between 1 and 120 characters."
    try:
        priority = int(data.get("priority") or 0)
        if not -100 <= priority <= 100:
            errors["priority"] = "between -100 and 100"
    except (TypeError, ValueError):
        errors["priority"] = "not a whole number"
        priority = 0
    channels = data.get("channels") or []
    if isinstance(channels, str):
        channels = [c.strip() for c in channels.split(",") if c.strip()]
    bad = [c for c in channels if c not in CAPACITY_CHANNELS]
    if bad:
        errors["channels"] = f"unknown channel {bad[0]}; use {', '.join(CAPACITY_CHANNELS)}"
    try:
        sla = int(data.get("sla_minutes") or 30)
        if not 1 <= sla <= 60 * 24 * 14:
            errors["sla_minutes"] = "between 1 minute and 14 days"
    except (TypeError, ValueError):
        errors["sla_minutes"] = "not a whole number"
        sla = 30
    team = data.get("team")
    if team is not None and not isinstance(team, Team):
        team = Team.objects.filter(pk=team).first()
        if team is None:
            errors["team"] = "no such team"
    skills: dict[str, int] = {}
    try:
        skills = parse_skills(data.get("required_skills") or {})
    except ValidationFailed as exc:
        errors["required_skills"] = exc.fields.get("skills", exc.message)
    if errors:
        raise ValidationFailed("The queue is not valid.", fields=errors)
    return {
        "name": name, "priority": priority, "channels": sorted(set(channels)), "sla_minutes": sla,
        "team": team, "required_skills": skills, "is_active": bool(data.get("is_active", True)),
    }  # fmt: skip


def do_save_queue(*, actor: User, data: dict[str, Any], queue: Queue | None = None) -> Queue:
    """Create (queue=None) or change a queue."""
    check_perm(actor, "routing.configure")
    clean = _clean_queue(data)
    try:
        with transaction.atomic():
            before = None
            if queue is None:
                queue = Queue.objects.create(**clean)
            else:
                queue = Queue.objects.select_for_update().get(pk=queue.pk)
                before = {"name": queue.name, "priority": queue.priority, "channels": queue.channels}
                for key, value in clean.items():
                    setattr(queue, key, value)
                queue.save()
            record_audit(actor=actor, action="routing.queue", obj=queue, before=before,
                         after={"name": queue.name, "priority": queue.priority, "channels": queue.channels,
                                "sla_minutes": queue.sla_minutes, "required_skills": queue.required_skills})  # fmt: skip
    except IntegrityError:
        raise ValidationFailed("A queue with this name exists.", fields={"name": "taken"}) from None
    return queue


def do_delete_queue(*, actor: User, queue_id: int) -> None:
    """Waiting items of a deleted queue stay waiting, without a queue (they still get routed)."""
    check_perm(actor, "routing.configure")
    with transaction.atomic():
        queue = Queue.objects.filter(pk=queue_id).first()
        if queue is None:
            raise NotFound("No such queue.")
        record_audit(actor=actor, action="routing.queue_delete", obj=queue, before={"name": queue.name})
        queue.delete()
