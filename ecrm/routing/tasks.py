"""Background work of routing: a solve after each event (so requests stay fast), and the tick."""

from __future__ import annotations

from huey import crontab

from ecrm.core.tasks import ecrm_periodic_task, ecrm_task


@ecrm_task(retries=2, retry_delay=5)
def route_task() -> int:
    """One batch solve. Many queued at once are harmless: the lock serialises them and a solve with
    nothing waiting is a few queries."""
    from .services import route_once

    return route_once().assigned


@ecrm_task(retries=3, retry_delay=5)
def enqueue_task(kind: str, object_id: int, route: bool = True) -> int | None:
    """Put an object in its queue (idempotent), then solve."""
    from .services import enqueue

    item = enqueue(kind=kind, object_id=object_id)
    if route and item is not None:
        route_task()
    return item.pk if item else None


@ecrm_task(retries=3, retry_delay=5)
def complete_task(kind: str, object_id: int) -> None:
    """The object is finished: end its item, and solve (a slot freed up)."""
    from .services import complete

    if complete(kind=kind, object_id=object_id) is not None:
        route_task()


@ecrm_periodic_task(crontab(minute="*"))
def routing_tick() -> int:
    """Every minute: idle agents to away/offline, unanswered work back to the queue, finished work
    completed, then one solve (events trigger solves in between)."""
    from .models import WorkItem, WorkStatus
    from .services import tick

    result = tick()
    # Huey's scheduler wakes once a minute; while work is waiting, three delayed solves make it a
    # solve every 15 s (nothing waiting: nothing to schedule, the queue stays quiet)
    if result.waiting > result.assigned or WorkItem.objects.filter(status=WorkStatus.WAITING).exists():
        for delay in (15, 30, 45):
            route_task.schedule(delay=delay)
    return result.assigned
