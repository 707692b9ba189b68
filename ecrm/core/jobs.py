"""Exactly-once background jobs: a claim ledger in our own database, and recovery of jobs whose worker died.

Huey takes a job off its queue (the SQLite file or Redis) when a worker starts it, so a worker killed with
SIGKILL in the middle of a job loses it. Every `ecrm_task` therefore goes through this module:

0. `record_enqueued()` writes the job's ledger row (state `queued`: task id, name, arguments, the serialised
   queue message) when it is sent, in the sender's transaction.
1. `claim()` flips it to `running` for this worker (host, pid, boot id) with a conditional UPDATE, committed
   at once, before the body runs. Huey has already taken the message off its queue at that point: a
   worker killed between the two leaves a `queued` row whose message is nowhere in the queue, which
   recovery notices too (step 3).
2. The body runs inside `transaction.atomic()`, and in that same transaction `_mark_done()` flips the claim
   to done with a conditional UPDATE (`... WHERE state='running' AND worker=<me>`). A kill mid-job commits
   nothing, so running the job again later is not a duplicate. If recovery took the claim away meanwhile
   (the worker looked dead), the UPDATE touches no row and the body is rolled back: it will run elsewhere.
3. Each worker process beats (`WorkerHeartbeat` row `w:<worker>`) and, at start and every
   `ECRM_JOB_RECOVERY_SECONDS`, `recover_orphaned_jobs()` returns to the queue every claim still running
   whose worker is dead: its pid is gone on this host, or its beat is older than `ECRM_JOB_ORPHAN_AFTER`;
   and every queued/retrying job older than that which is neither in the queue nor in the schedule.
   The switch to `requeued` is a conditional UPDATE too, so of two workers recovering at once one wins, and
   a job sent twice anyway is claimed only once (a claim is taken from queued/requeued/retrying, never
   from running or done).

Jobs declared with `atomic=False` (long runs that commit progress themselves, or jobs whose work is
outside our database: mail, HTTP) keep the ledger and the recovery but are at-least-once: a job killed
after its outside effect and before its claim is marked done runs again, so such jobs dedupe by their own
keys (a message's status, an import's last committed chunk). See docs/operations.md.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, close_old_connections, connection, transaction
from django.db.models import F
from django.utils import timezone
from huey.exceptions import CancelExecution

from .models import FailedJob, JobClaim, JobState, WorkerHeartbeat

logger = logging.getLogger(__name__)

HOST = socket.gethostname()[:100]
_BOOT = uuid.uuid4().hex[:8]  # tells a reused pid apart from the process that used it before
BEAT_PREFIX = "w:"
# States a job may be claimed from: sent, sent again by recovery or by Huey's retry, resent after a failure.
CLAIMABLE = (JobState.QUEUED, JobState.REQUEUED, JobState.RETRYING, JobState.FAILED)
# States in which the job's message should be in Huey's queue or schedule.
WAITING = (JobState.QUEUED, JobState.REQUEUED, JobState.RETRYING)


def conf(name: str) -> float:
    defaults = {
        "ECRM_JOB_ORPHAN_AFTER": 60,  # seconds without a beat before another host's job counts as orphaned
        "ECRM_WORKER_BEAT_SECONDS": 10,
        "ECRM_JOB_RECOVERY_SECONDS": 30,
        "ECRM_JOB_LEDGER_KEEP_DAYS": 7,
        "ECRM_JOB_LONG_RUNNING": 900,  # the health check flags jobs running longer than this
    }
    return float(getattr(settings, name, defaults[name]))


def worker_id() -> str:
    """This process as a worker: host, pid and a boot id (fits WorkerHeartbeat.name with its prefix)."""
    return f"{HOST[:40]}:{os.getpid()}:{_BOOT}"


def _plain(value: Any) -> Any:
    try:
        return json.loads(json.dumps(value, cls=DjangoJSONEncoder))
    except (TypeError, ValueError):
        return repr(value)


class ClaimLost(Exception):
    """The claim was taken from this worker (recovered elsewhere) before the job could commit."""


# --- the hot path: one INSERT before the job, one UPDATE in the job's own transaction ------------------


def record_enqueued(task, huey) -> None:
    """Write the ledger row of a job being sent (Huey's ENQUEUED signal, in the sender's transaction)."""
    JobClaim.objects.bulk_create(
        [
            JobClaim(
                task_id=task.id,
                task_name=huey._registry.task_to_string(type(task)),
                args=_plain(list(task.args or ())),
                kwargs=_plain(dict(task.kwargs or {})),
                message=huey.serialize_task(task),
                priority=task.priority,
                state=JobState.QUEUED,
                queued_at=timezone.now(),
            )
        ],
        ignore_conflicts=True,  # a retry re-sends a job that already has its row
    )


def claim(task, huey) -> bool:
    """Take the job for this worker; False when it is done or already running elsewhere (skip it)."""
    now = timezone.now()
    fields = {"worker": worker_id(), "host": HOST, "pid": os.getpid(), "started_at": now, "finished_at": None}
    taken = JobClaim.objects.filter(task_id=task.id, state__in=CLAIMABLE).update(
        state=JobState.RUNNING, attempt=F("attempt") + 1, **fields
    )
    if taken:
        return True
    # No claimable row: done or running (skip), or never written (sent from a transaction that rolled
    # back after Huey had the message, or sent before the ledger existed): write it now, as running.
    try:
        with transaction.atomic():  # rare path; a savepoint keeps a caller's transaction usable on conflict
            JobClaim.objects.create(
                task_id=task.id, task_name=huey._registry.task_to_string(type(task)), state=JobState.RUNNING,
                args=_plain(list(task.args or ())), kwargs=_plain(dict(task.kwargs or {})),
                message=huey.serialize_task(task), priority=task.priority, queued_at=now, attempt=1, **fields,
            )  # fmt: skip
        return True
    except IntegrityError:
        return False


def _mark_done(task_id: str) -> int:
    return JobClaim.objects.filter(task_id=task_id, state=JobState.RUNNING, worker=worker_id()).update(
        state=JobState.DONE, finished_at=timezone.now()
    )


def _mark_failed(task, exc: BaseException) -> None:
    from huey.exceptions import RetryTask

    state = JobState.RETRYING if (task.retries or isinstance(exc, RetryTask)) else JobState.FAILED
    try:
        JobClaim.objects.filter(task_id=task.id, state=JobState.RUNNING, worker=worker_id()).update(
            state=state, finished_at=timezone.now()
        )
    except Exception:  # the ledger must not hide the job's own error
        logger.exception("could not record the failure of job %s", task.id)


def run_claimed(fn, task, huey, args, kwargs, *, atomic: bool):
    """Run one job under its claim (what `ecrm_task` wraps every job body in when a worker runs it)."""
    if not claim(task, huey):
        logger.warning("job %s (%s) is done or running elsewhere; not running it again", task.id, fn.__name__)
        return None
    try:
        if atomic:
            with transaction.atomic():
                result = fn(*args, **kwargs)
                if _mark_done(task.id) != 1:
                    raise ClaimLost(task.id)
        else:
            result = fn(*args, **kwargs)
            if _mark_done(task.id) != 1:
                logger.warning("job %s finished after its claim was recovered (at-least-once job)", task.id)
        return result
    except ClaimLost:
        logger.warning("job %s was recovered by another worker; its work is rolled back", task.id)
        raise CancelExecution(retry=False) from None
    except Exception as exc:
        _mark_failed(task, exc)
        raise


# --- recovery -------------------------------------------------------------------------------------


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    try:  # a killed child nobody has reaped yet still answers kill(0); it is dead all the same
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _worker_dead(claim: JobClaim, beats: dict[str, dt.datetime], now: dt.datetime) -> bool:
    me = worker_id()
    if claim.worker == me:
        return False
    if claim.host == HOST:
        if claim.pid == os.getpid() or not pid_alive(claim.pid):
            return True  # our pid with another boot id is a previous process that used the same pid
    last = beats.get(claim.worker) or claim.started_at or claim.queued_at
    return (now - last).total_seconds() > conf("ECRM_JOB_ORPHAN_AFTER")


def requeue(claim: JobClaim, huey, *, now: dt.datetime | None = None) -> bool:
    """Return one running job to the queue, once: the conditional UPDATE decides who does it."""
    now = now or timezone.now()
    won = JobClaim.objects.filter(pk=claim.pk, state=JobState.RUNNING, worker=claim.worker).update(
        state=JobState.REQUEUED, requeued_at=now, queued_at=now, recoveries=F("recoveries") + 1
    )
    if won:
        huey.storage.enqueue(bytes(claim.message), claim.priority)
        logger.warning(
            "returned job %s (%s) of worker %s to the queue", claim.task_id, claim.task_name, claim.worker
        )
    return bool(won)


def recover_orphaned_jobs(huey=None, *, now: dt.datetime | None = None) -> list[str]:
    """Re-enqueue every running job whose worker is dead, and every waiting job whose message is lost;
    returns the task ids this call sent again."""
    if huey is None:
        from .tasks import HUEY as huey
    now = now or timezone.now()
    orphan_after = conf("ECRM_JOB_ORPHAN_AFTER")
    running = list(
        JobClaim.objects.filter(state=JobState.RUNNING).only(
            "pk", "task_id", "task_name", "worker", "host", "pid", "started_at", "message", "priority"
        )
    )
    recovered: list[str] = []
    if running:
        names = {BEAT_PREFIX + c.worker for c in running}
        beats = {
            name.removeprefix(BEAT_PREFIX): at
            for name, at in WorkerHeartbeat.objects.filter(name__in=names).values_list("name", "beat_at")
        }
        for claim_ in running:
            if _worker_dead(claim_, beats, now) and requeue(claim_, huey, now=now):
                recovered.append(claim_.task_id)
    recovered += _resend_lost(huey, now - dt.timedelta(seconds=orphan_after), now)
    return recovered


def _message_ids(huey) -> set[str]:
    ids = set()
    for data in [*huey.storage.enqueued_items(), *huey.storage.scheduled_items()]:
        try:
            ids.add(huey.serializer.deserialize(data).id)
        except Exception:  # noqa: BLE001, S112 - an unreadable message is Huey's problem, not a lost job
            continue
    return ids


def _resend_lost(huey, older_than: dt.datetime, now: dt.datetime) -> list[str]:
    """Jobs the ledger says are waiting, sent a while ago, whose message is in neither the queue nor the
    schedule: a worker took the message and died before claiming it (or between requeue and enqueue).
    A message still in flight somewhere is harmless to duplicate: only one copy can claim the job."""
    waiting = list(
        JobClaim.objects.filter(state__in=WAITING, queued_at__lt=older_than).only(
            "pk", "task_id", "state", "message", "priority"
        )[:1000]
    )
    if not waiting:
        return []
    present = _message_ids(huey)
    sent = []
    for claim_ in waiting:
        if claim_.task_id in present:
            continue
        if JobClaim.objects.filter(pk=claim_.pk, state=claim_.state, queued_at__lt=older_than).update(
            queued_at=now, recoveries=F("recoveries") + 1
        ):
            huey.storage.enqueue(bytes(claim_.message), claim_.priority)
            logger.warning("re-sent job %s, whose message was lost before it started", claim_.task_id)
            sent.append(claim_.task_id)
    return sent


def return_in_flight(task, huey) -> bool:
    """Graceful shutdown ran out of time: give this worker's unfinished job back to the queue now."""
    if connection.vendor == "sqlite":
        # The job's own transaction may hold the write lock; do not wait the usual 30 s for it. If we
        # cannot get it, the claim stays 'running' with a dead pid and the next worker recovers it.
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA busy_timeout = 2000")
    claim_ = JobClaim.objects.filter(task_id=task.id, state=JobState.RUNNING, worker=worker_id()).first()
    return bool(claim_ and requeue(claim_, huey))


def prune_ledger(*, now: dt.datetime | None = None) -> int:
    """Forget finished (done or failed) jobs after ECRM_JOB_LEDGER_KEEP_DAYS, and beats of workers gone
    for a day."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(days=conf("ECRM_JOB_LEDGER_KEEP_DAYS"))
    # Failed jobs live on in the dead-letter list (FailedJob); their ledger rows go like done ones.
    finished = (JobState.DONE, JobState.FAILED)
    deleted, _ = JobClaim.objects.filter(state__in=finished, queued_at__lt=cutoff).delete()
    WorkerHeartbeat.objects.filter(
        name__startswith=BEAT_PREFIX, beat_at__lt=now - dt.timedelta(days=1)
    ).delete()
    return deleted


# --- the worker process: beat, recover at start and periodically ---------------------------------

_started = threading.Lock()
_beating: threading.Thread | None = None
_stop = threading.Event()


def beat() -> None:
    WorkerHeartbeat.objects.update_or_create(
        name=BEAT_PREFIX + worker_id(), defaults={"beat_at": timezone.now()}
    )


def _beat_loop(huey) -> None:
    every = conf("ECRM_WORKER_BEAT_SECONDS")
    recover_every = conf("ECRM_JOB_RECOVERY_SECONDS")
    last_recovery = last_prune = time.monotonic()
    while not _stop.wait(every):
        try:
            close_old_connections()
            beat()
            if time.monotonic() - last_recovery >= recover_every:
                last_recovery = time.monotonic()
                recover_orphaned_jobs(huey)
            if time.monotonic() - last_prune >= 3600:
                last_prune = time.monotonic()
                prune_ledger()
        except Exception:  # a database hiccup must not stop the beat for good
            logger.exception("worker beat failed")
        finally:
            connection.close()


def start_worker(huey) -> None:
    """Called by each worker thread as it starts; the first one beats and recovers for the process."""
    global _beating
    with _started:
        if _beating is not None and _beating.is_alive():
            return
        try:
            beat()
            recovered = recover_orphaned_jobs(huey)
            if recovered:
                logger.warning("recovered %d job(s) of dead workers at start", len(recovered))
        finally:
            connection.close()
        _stop.clear()
        _beating = threading.Thread(target=_beat_loop, args=(huey,), name="ecrm-worker-beat", daemon=True)
        _beating.start()


def ledger_summary(*, now: dt.datetime | None = None) -> dict[str, Any]:
    """Counts for the health check: jobs running too long, orphans waiting for recovery, dead letters."""
    now = now or timezone.now()
    long_running = JobClaim.objects.filter(
        state=JobState.RUNNING, started_at__lt=now - dt.timedelta(seconds=conf("ECRM_JOB_LONG_RUNNING"))
    ).count()
    return {
        "running": JobClaim.objects.filter(state=JobState.RUNNING).count(),
        "running_too_long": long_running,
        "waiting": JobClaim.objects.filter(state__in=WAITING).count(),
        "dead_letters": FailedJob.objects.filter(resolved_at__isnull=True).count(),
    }
