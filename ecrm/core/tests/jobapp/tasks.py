"""Jobs for the real-process recovery tests (worker_settings installs this app; the app itself never does)."""

from __future__ import annotations

import os
import time

from huey.contrib.djhuey import db_task

from ecrm.core.tasks import ecrm_task


@ecrm_task(retries=0)
def mark(number: int, seconds: float = 0.1, log: str = "") -> int:
    """Write this job's row, taking `seconds` about it; every start is also appended to `log` (outside the
    database), so a test sees how often the body began as well as how often it committed."""
    from .models import JobMark

    if log:
        with open(log, "a") as fh:
            fh.write(f"{number}\n")
    JobMark.objects.create(number=number, pid=os.getpid())
    time.sleep(seconds)
    return number


@db_task()
def mark_plain(number: int, seconds: float = 0.0) -> int:
    """The same job as a plain Huey task, without the ledger: the baseline bench/recovery.py compares with."""
    from .models import JobMark

    JobMark.objects.create(number=number, pid=os.getpid())
    time.sleep(seconds)
    return number


@ecrm_task(retries=1, retry_delay=0)
def always_fails(number: int) -> None:
    """Writes, then fails: each attempt's write must roll back, and the last failure is dead-lettered."""
    from .models import JobMark

    JobMark.objects.create(number=number, pid=os.getpid())
    raise RuntimeError(f"warehouse API down for {number}")
