"""Background jobs of webhooks: send one delivery, and the minute sweep that sends due retries."""

from __future__ import annotations

from huey import crontab

from ecrm.core.tasks import ecrm_periodic_task, ecrm_task


# No Huey retries: a delivery's own backoff schedule (next_attempt_at) is the retry mechanism, and the
# attempt claims the row first, so running this twice for one delivery sends it once. atomic=False: the
# claim (lease) must commit before the HTTP call, and no database transaction may span a network call.
@ecrm_task(retries=0, atomic=False)
def deliver(delivery_id: int, manual: bool = False) -> str | None:
    from .services import attempt_delivery

    delivery = attempt_delivery(delivery_id, manual=manual)
    return delivery.status if delivery else None


@ecrm_task(retries=0, atomic=False)
def deliver_many(delivery_ids: list[int]) -> int:
    """The deliveries of one event, in turn (a slow receiver delays the others by at most its timeout)."""
    from .services import attempt_delivery

    return sum(1 for pk in delivery_ids if attempt_delivery(pk) is not None)


def send_due(*, now=None, limit: int = 500) -> int:
    """Send every delivery whose retry is due (the periodic job; tests call it directly). Returns how
    many were attempted."""
    from .services import attempt_delivery, due_delivery_ids

    sent = 0
    for pk in due_delivery_ids(now=now, limit=limit):
        if attempt_delivery(pk, now=now) is not None:
            sent += 1
    return sent


@ecrm_periodic_task(crontab(minute="*"))
def send_due_deliveries() -> None:
    send_due()
