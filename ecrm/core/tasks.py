"""Background jobs on Huey (SQLite file by default, Redis at scale), and the dead-letter list.

`ecrm_task` is the one decorator apps use: retries with exponential backoff, and when the last retry
fails the job is written to `FailedJob`, which admins see in the console and can retry.
"""

from __future__ import annotations

import logging
import traceback

from huey import signals
from huey.contrib.djhuey import HUEY, db_periodic_task, db_task

logger = logging.getLogger(__name__)

__all__ = ["HUEY", "ecrm_task", "ecrm_periodic_task"]


def ecrm_task(*, retries: int = 3, retry_delay: int = 10, backoff: float = 2.0, **kwargs):
    """A durable background task: retried with exponential backoff, dead-lettered when it gives up."""
    return db_task(retries=retries, retry_delay=retry_delay, retry_backoff=backoff, **kwargs)


def ecrm_periodic_task(validate_datetime, **kwargs):
    return db_periodic_task(validate_datetime, **kwargs)


@HUEY.signal(signals.SIGNAL_ERROR)
def _dead_letter(signal, task, exc=None):
    # Huey emits ERROR on every failed attempt; only the last one (no retries left) is dead.
    if task.retries:
        return
    from .models import FailedJob

    try:
        FailedJob.objects.update_or_create(
            task_id=task.id,
            defaults={
                "task_name": HUEY._registry.task_to_string(type(task)),
                # Tasks take ids and plain values (see CONTRIBUTING), so their arguments are JSON and
                # a retry from the console re-sends them unchanged.
                "args": list(task.args or ()),
                "kwargs": dict(task.kwargs or {}),
                "error": "".join(traceback.format_exception(exc)) if exc else "unknown error",
            },
        )
    except Exception:  # the dead-letter hook must never take the worker down
        logger.exception("could not record failed job %s", task.id)


@ecrm_task(retries=0)
def heartbeat(name: str = "worker") -> str:
    """Record that a worker ran a job; scheduled every minute, and enqueued by tests."""
    from django.utils import timezone

    from .models import WorkerHeartbeat

    WorkerHeartbeat.objects.update_or_create(name=name, defaults={"beat_at": timezone.now()})
    return name


@ecrm_periodic_task(__import__("huey").crontab(minute="*"))
def periodic_heartbeat() -> None:
    heartbeat.call_local("worker")
