"""Writes for users, teams and API keys. Every write is audited."""

from __future__ import annotations

import hashlib
import secrets

from django.db import transaction
from django.utils import timezone

from .audit import record_audit, snapshot
from .exceptions import NotFound, ValidationFailed
from .models import ApiKey, ApiKeyScope, Role, Team, User
from .permissions import check_perm

KEY_PREFIX = "ecrm_"


def hash_api_key(raw_key: str) -> str:
    # API keys are 256-bit random tokens, so a fast hash is safe (no dictionary to attack), and the
    # per-request lookup stays a single indexed query.
    return hashlib.sha256(raw_key.encode()).hexdigest()


def do_create_api_key(*, name: str, scope: str, actor: User | None) -> tuple[ApiKey, str]:
    """Create a key; returns the model and the raw secret, which is never stored or shown again."""
    if actor is not None:
        check_perm(actor, "integrations.manage")
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("A key needs a name.", fields={"name": "This field is required."})
    if scope not in ApiKeyScope.values:
        raise ValidationFailed(
            f"Unknown scope {scope!r}.", fields={"scope": f"Choose one of {', '.join(ApiKeyScope.values)}."}
        )
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        key = ApiKey.objects.create(
            name=name, scope=scope, prefix=raw[:12], key_hash=hash_api_key(raw), created_by=actor
        )
        record_audit(
            actor=actor, action="api_key.create", obj=key, after=snapshot(key, ["name", "scope", "prefix"])
        )
    return key, raw


def do_revoke_api_key(*, key_id: int, actor: User) -> ApiKey:
    check_perm(actor, "integrations.manage")
    with transaction.atomic():
        key = ApiKey.objects.select_for_update().filter(pk=key_id).first()
        if key is None:
            raise NotFound("No such API key.")
        if key.revoked_at is None:
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at", "updated_at"])
            record_audit(actor=actor, action="api_key.revoke", obj=key, after={"revoked_at": key.revoked_at})
    return key


def authenticate_api_key(raw_key: str) -> ApiKey | None:
    """The active key for a raw secret, or None. Updates last-used at most once a minute per key."""
    if not raw_key or not raw_key.startswith(KEY_PREFIX):
        return None
    key = ApiKey.objects.filter(key_hash=hash_api_key(raw_key)).first()
    if key is None or key.revoked_at is not None:
        return None
    now = timezone.now()
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


def do_create_user(
    *,
    username: str,
    password: str,
    role: str,
    actor: User | None,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    teams: list[Team] | None = None,
) -> User:
    if actor is not None:
        check_perm(actor, "integrations.manage")
    if role not in Role.values:
        raise ValidationFailed(f"Unknown role {role!r}.", fields={"role": "Unknown role."})
    with transaction.atomic():
        user = User.objects.create_user(
            username=username,
            password=password,
            email=email,
            role=role,
            first_name=first_name,
            last_name=last_name,
            is_staff=role in (Role.ADMIN,),
            is_superuser=role == Role.ADMIN,
        )
        if teams:
            user.teams.set(teams)
        record_audit(actor=actor, action="user.create", obj=user, after={"username": username, "role": role})
    return user


def do_retry_failed_job(*, job_id: int, actor: User) -> None:
    """Send a dead-lettered job back to the queue with its original arguments."""
    from django.utils import timezone

    from .models import FailedJob
    from .tasks import HUEY

    check_perm(actor, "jobs.view")
    with transaction.atomic():
        job = FailedJob.objects.select_for_update().filter(pk=job_id, resolved_at__isnull=True).first()
        if job is None:
            raise NotFound("No such failed job.")
        try:
            task_class = HUEY._registry.string_to_task(job.task_name)
        except Exception as exc:  # the job's code was removed or renamed since it failed
            raise NotFound(f"The job type {job.task_name!r} no longer exists.") from exc
        job.resolved_at = timezone.now()
        job.save(update_fields=["resolved_at"])
        record_audit(actor=actor, action="job.retry", obj=job, after={"task": job.task_name})
        transaction.on_commit(lambda: HUEY.enqueue(task_class(args=tuple(job.args), kwargs=job.kwargs)))
