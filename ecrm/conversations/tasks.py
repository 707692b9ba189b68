"""Background work for conversations: delivering replies (retried with backoff, dead-lettered)."""

from __future__ import annotations

from ecrm.core.tasks import ecrm_periodic_task, ecrm_task


@ecrm_task(retries=5, retry_delay=30, atomic=False)  # sends outside; deduped by the message status
def deliver_message(message_id: int) -> None:
    from .services import deliver

    deliver(message_id)


# --- email: IMAP polling (channels/email/imap.py) ---------------------------------------------------


@ecrm_task(retries=3, retry_delay=60, atomic=False)  # mail fetched is stored as it comes
def poll_email_inbox(inbox_id: int) -> None:
    """Fetch one inbox's unseen mail; a failed connection is retried with backoff, then dead-lettered."""
    from .channels.email.imap import poll_inbox
    from .models import Inbox

    inbox = Inbox.objects.filter(pk=inbox_id, kind="email", is_active=True).first()
    if inbox is not None:
        poll_inbox(inbox)


@ecrm_periodic_task(__import__("huey").crontab(minute="*"))
def poll_email_inboxes() -> None:
    """Every minute: enqueue a poll of each active IMAP inbox whose poll_seconds have passed."""
    from .channels.email.imap import due_inboxes

    for inbox_id in due_inboxes():
        poll_email_inbox(inbox_id)


# --- callback reminders (channels/callback/services.py) ---
from huey import crontab  # noqa: E402

from ecrm.core.tasks import ecrm_periodic_task  # noqa: E402


@ecrm_periodic_task(crontab(minute="*"))
def send_callback_reminders() -> int:
    """Every minute: remind agents of the callbacks due in the next 10 minutes (exactly once)."""
    from .channels.callback.services import send_due_reminders

    return send_due_reminders()
