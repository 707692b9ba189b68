"""Background jobs on Huey (SQLite file by default, Redis at scale), and the dead-letter list.

`ecrm_task` is the one decorator apps use: retries with exponential backoff, and when the last retry
fails the job is written to `FailedJob`, which admins see in the console and can retry. In a worker,
every job runs under a claim in the job ledger (core/jobs.py): inside one database transaction by
default, so a worker killed mid-job commits nothing and the recovered job runs exactly once.
"""

from __future__ import annotations

import functools
import logging
import traceback

from huey import signals
from huey.contrib.djhuey import HUEY, close_db, db_periodic_task

logger = logging.getLogger(__name__)

__all__ = ["HUEY", "ecrm_task", "ecrm_periodic_task"]


def ecrm_task(
    *, retries: int = 3, retry_delay: int = 10, backoff: float = 2.0, atomic: bool = True, **kwargs
):
    """A durable background task: retried with exponential backoff, dead-lettered when it gives up.

    `atomic=True` (the default) runs the body and the ledger's "done" mark in one transaction: exactly
    once, even when the worker is killed. Pass `atomic=False` for long jobs that commit progress as they
    go, or whose work is outside the database (mail, HTTP): those are at-least-once and dedupe by their
    own keys.
    """
    wants_context = kwargs.pop("context", False)

    def decorator(fn):
        @functools.wraps(fn)
        def run(*args, task=None, **kw):
            if wants_context:
                kw["task"] = task
            if HUEY.immediate or task is None:
                # Eager mode (tests, DEBUG): the caller's transaction is the job's; no worker to lose.
                return fn(*args, **kw)
            from .jobs import run_claimed

            return run_claimed(fn, task, HUEY, args, kw, atomic=atomic)

        wrapper = HUEY.task(
            retries=retries, retry_delay=retry_delay, retry_backoff=backoff, context=True, **kwargs
        )(close_db(run))
        wrapper.call_local = fn
        wrapper.task_class.ecrm_ledger = True  # written to the ledger when sent (see _record_enqueued)
        return wrapper

    return decorator


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


@HUEY.signal(signals.SIGNAL_ENQUEUED)
def _record_enqueued(signal, task, *args, **kwargs):
    # Only ecrm_task jobs, and only when a worker will run them (not eagerly in tests).
    if HUEY.immediate or not getattr(task, "ecrm_ledger", False):
        return
    from .jobs import record_enqueued

    record_enqueued(task, HUEY)


@HUEY.on_startup()
def _start_worker() -> None:
    # Each worker thread calls this as it starts; the first beats and recovers jobs of dead workers.
    from .jobs import start_worker

    start_worker(HUEY)


@HUEY.signal(signals.SIGNAL_INTERRUPTED)
def _return_interrupted(signal, task, *args, **kwargs):
    # Graceful shutdown ran past its grace period with this job unfinished: hand it back to the queue.
    from .jobs import return_in_flight

    try:
        return_in_flight(task, HUEY)
    except Exception:  # the next worker's start-up recovery is the backstop
        logger.exception("could not return job %s to the queue", task.id)


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
