"""Background work for conversations: delivering replies (retried with backoff, dead-lettered)."""

from __future__ import annotations

from ecrm.core.tasks import ecrm_task


@ecrm_task(retries=5, retry_delay=30)
def deliver_message(message_id: int) -> None:
    from .services import deliver

    deliver(message_id)
