"""Background jobs: the nightly run, and a run queued from the console."""

from __future__ import annotations

from huey import crontab

from ecrm.core.tasks import ecrm_periodic_task, ecrm_task

from .models import RunTrigger


# atomic=False: a run commits its progress as it goes (shown live) and records its own failure; retrying
# a failed fit would fail the same way.
@ecrm_task(retries=0, atomic=False)
def run_analytics_task(run_id: int) -> int:
    from .services import run_analytics

    return run_analytics(run_id=run_id, trigger=RunTrigger.CONSOLE).pk


@ecrm_periodic_task(crontab(hour="2", minute="30"))
def nightly_analytics() -> None:
    """Every night at 02:30 UTC (Huey schedules in UTC): all orders up to today in the shop's time
    zone, unless a run is already queued or running."""
    from .services import active_run, run_analytics

    if active_run() is None:
        run_analytics(trigger=RunTrigger.SCHEDULE)
