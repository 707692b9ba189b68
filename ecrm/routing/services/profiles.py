"""Agents' routing profiles: skills with levels, capacity per channel, presence (set by the agent,
a manager, an integration, or by idleness)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ecrm.core.audit import record_audit
from ecrm.core.consumers import publish
from ecrm.core.exceptions import PermissionDenied, ValidationFailed
from ecrm.core.models import ApiKey, User
from ecrm.core.permissions import check_perm, has_perm

from ..models import CAPACITY_CHANNELS, DEFAULT_CAPACITY, SKILL_PREFIXES, AgentProfile, Presence

SKILL_RE = re.compile(r"^(" + "|".join(SKILL_PREFIXES) + r"):[a-z0-9][a-z0-9_\-./]{0,62}$")
MAX_CAPACITY = 100
DASHBOARD_GROUP = "routing.dashboard"


def ensure_profile(user: User) -> AgentProfile:
    """The user's profile, created on first use with the default capacity and, as a start, their
    console language as a skill (languages are a hard requirement: with none, nothing can be routed
    to them until a manager sets their skills)."""
    lang = (user.language or "").split("-")[0].lower()
    skills = {f"lang:{lang}": 3} if SKILL_RE.match(f"lang:{lang}") else {}
    profile, _ = AgentProfile.objects.get_or_create(
        user=user, defaults={"capacity": dict(DEFAULT_CAPACITY), "skills": skills}
    )
    return profile


def parse_skills(value: Any) -> dict[str, int]:
    """Skills from a dict or from text ("lang:zh=5, cat:tea=3", one per line or comma-separated).
    Keys are `<lang|cat|channel|type>:<name>`, lower case; levels 1..5."""
    if isinstance(value, str):
        pairs: list[tuple[str, Any]] = []
        for part in re.split(r"[,\n]", value):
            part = part.strip()
            if not part:
                continue
            key, sep, level = part.partition("=")
            pairs.append((key.strip(), level.strip() if sep else "3"))
    elif isinstance(value, dict):
        pairs = list(value.items())
    else:
        raise ValidationFailed("Skills must be a list of skill=level.", fields={"skills": "invalid"})
    out: dict[str, int] = {}
    for key, level in pairs:
        key = str(key).strip().lower()
        if not SKILL_RE.match(key):
            raise ValidationFailed(
                f"{key!r} is not a skill: use lang:zh, cat:tea, channel:chat or type:complaint.",
                fields={"skills": f"invalid skill {key}"},
            )
        try:
            n = int(level)
        except (TypeError, ValueError):
            n = 0
        if not 1 <= n <= 5:
            raise ValidationFailed(
                f"The level of {key} must be 1 to 5.", fields={"skills": f"level of {key}"}
            )
        out[key] = n
    return out


def parse_capacity(value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        raise ValidationFailed("Capacity must map channels to numbers.", fields={"capacity": "invalid"})
    out: dict[str, int] = {}
    for channel, n in value.items():
        if channel not in CAPACITY_CHANNELS:
            raise ValidationFailed(
                f"Unknown channel {channel!r}.", fields={"capacity": f"unknown channel {channel}"}
            )
        try:
            n = int(n)
        except (TypeError, ValueError):
            raise ValidationFailed(
                f"The capacity for {channel} must be a number.",
                fields={f"capacity.{channel}": "not a number"},
            ) from None
        if not 0 <= n <= MAX_CAPACITY:
            raise ValidationFailed(
                f"The capacity for {channel} must be 0 to {MAX_CAPACITY}.",
                fields={f"capacity.{channel}": "range"},
            )
        out[channel] = n
    return out


def do_update_profile(
    *,
    actor: User,
    user: User,
    skills: Any = None,
    capacity: Any = None,
    routable: bool | None = None,
) -> AgentProfile:
    """A manager sets an agent's skills, capacity and whether routing gives them work."""
    check_perm(actor, "routing.configure")
    if not has_perm(user, "conversations.reply"):
        raise ValidationFailed("This person cannot take work.", fields={"user": "not an agent"})
    clean_skills = parse_skills(skills) if skills is not None else None
    clean_capacity = parse_capacity(capacity) if capacity is not None else None
    with transaction.atomic():
        profile = ensure_profile(user)
        profile = AgentProfile.objects.select_for_update().get(pk=profile.pk)
        before = {"skills": profile.skills, "capacity": profile.capacity, "routable": profile.routable}
        if clean_skills is not None:
            profile.skills = clean_skills
        if clean_capacity is not None:
            profile.capacity = clean_capacity
        if routable is not None:
            profile.routable = bool(routable)
        profile.save(update_fields=["skills", "capacity", "routable", "updated_at"])
        record_audit(actor=actor, action="routing.profile", obj=profile, before=before,
                     after={"skills": profile.skills, "capacity": profile.capacity, "routable": profile.routable})  # fmt: skip
        _route_soon()
    return profile


def do_set_presence(
    *, actor: User | ApiKey | None, user: User, presence: str, source: str = "self"
) -> AgentProfile:
    """Online, away or offline. An agent sets their own; a manager (routing.configure) or a write API
    key sets anyone's; `actor=None` is the system (idleness). Going offline hands the agent's
    unanswered work back to the queue; coming online triggers a solve."""
    if presence not in Presence.values:
        raise ValidationFailed(
            f"Unknown presence {presence!r}.", fields={"presence": "online, away or offline"}
        )
    if isinstance(actor, User):
        if actor.pk != user.pk:
            check_perm(actor, "routing.configure")
            source = "manager"
        else:
            check_perm(actor, "conversations.reply")
    elif isinstance(actor, ApiKey):
        if not actor.allows_write():
            raise PermissionDenied("This API key is read-only.", code="read_only_key")
        source = "api"
    if not user.is_active or not has_perm(user, "conversations.reply"):
        raise ValidationFailed("This person cannot take work.", fields={"user": "not an agent"})
    from .solve import release_agent

    now = timezone.now()
    with transaction.atomic():
        profile = ensure_profile(user)
        profile = AgentProfile.objects.select_for_update().get(pk=profile.pk)
        before = profile.presence
        profile.presence_source = source
        if source in ("self", "manager", "api"):
            profile.last_activity_at = now  # choosing a presence is activity
        if before != presence:
            profile.presence = presence
            profile.presence_changed_at = now
        profile.save(update_fields=["presence", "presence_changed_at", "presence_source", "last_activity_at",
                                    "updated_at"])  # fmt: skip
        if before == presence:
            return profile
        record_audit(actor=actor, action="routing.presence", obj=profile, before={"presence": before},
                     after={"presence": presence, "source": source})  # fmt: skip
        if presence == Presence.OFFLINE:
            release_agent(agent=user, reason="offline")
        payload = {"type": "routing.presence", "user": user.pk, "presence": presence}
        transaction.on_commit(
            lambda: (publish(f"user.{user.pk}", payload), publish(DASHBOARD_GROUP, payload))
        )
        if presence == Presence.ONLINE:
            _route_soon()
    return profile


TOUCH_EVERY = dt.timedelta(seconds=30)


def touch_activity(user_id: int, at=None) -> None:
    """The agent did something (replied, commented, opened the console): an agent made away by
    idleness comes back online."""
    at = at or timezone.now()
    # Idleness is measured in minutes: an agent touched in the last 30 s (and not away for idleness)
    # matches no row, so a reply or a page view writes nothing.
    stale = (
        Q(last_activity_at__isnull=True)
        | Q(last_activity_at__lt=at - TOUCH_EVERY)
        | Q(presence=Presence.AWAY, presence_source="idle")
    )
    rows = AgentProfile.objects.filter(stale, user_id=user_id)
    # read first: on SQLite even an UPDATE that matches nothing takes the database's write lock
    if not rows.exists() or not rows.update(last_activity_at=at):
        return
    back = AgentProfile.objects.filter(
        user_id=user_id, presence=Presence.AWAY, presence_source="idle"
    ).update(presence=Presence.ONLINE, presence_changed_at=at, presence_source="self")
    if back:
        publish(DASHBOARD_GROUP, {"type": "routing.presence", "user": user_id, "presence": Presence.ONLINE})
        _route_soon()


def _route_soon() -> None:
    from ..tasks import route_task

    transaction.on_commit(route_task)
