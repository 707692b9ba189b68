"""Background jobs of workflows: evaluating rules for an event, and the scheduler for time-based rules."""

from __future__ import annotations

from huey import crontab

from ecrm.core.tasks import ecrm_periodic_task, ecrm_task


@ecrm_task(retries=0)
def run_rules(event: dict, lineage: list | tuple | None = None) -> int:
    """Evaluate the active rules for one domain event (a dict from `Event.as_dict()`). Not retried:
    rules already run would run again; a failing rule is logged on its run instead."""
    from .engine import event_from_dict, process_event

    return len(process_event(event_from_dict(event), tuple(lineage) if lineage else None))


@ecrm_periodic_task(crontab(minute="*"))
def run_scheduled_rules() -> None:
    from .engine import flush_counters
    from .services import run_due_scheduled_rules

    run_due_scheduled_rules()
    flush_counters()
