"""Domain events: what happened, published once after the transaction that made it commits.

Lower layers `emit` ("ticket.created", "order.status_changed", ...) without knowing who listens;
higher layers (routing, workflows, outgoing webhooks) `subscribe` in their AppConfig.ready(). A
handler runs after commit, in subscription order, and must be quick: real work goes to a background
job. A handler that raises is logged and never breaks the request or the other handlers.

Events carry ids and plain JSON values, never model instances, so they can be queued and replayed.
`chain` tells how many automated steps led to this event (a rule's action that updates a ticket emits
"ticket.updated" one step deeper), which is what workflow loop protection counts.

The catalogue of names and their `data` lives in `EVENT_NAMES` and docs/workflows.md.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

# name -> (subject type, what `data` holds). Emitters use only these names (tests check it).
EVENT_NAMES: dict[str, tuple[str, str]] = {
    "customer.created": ("customer", "fields: the profile's fields"),
    "customer.updated": ("customer", "changes: {field: [old, new]}"),
    "customer.score_changed": ("customer", "changes: {score: [old, new]} (segment, churn risk tier, ...)"),
    "order.placed": ("order", "status, total, currency, channel, customer"),
    "order.status_changed": ("order", "changes: {status: [old, new]}"),
    "conversation.created": ("conversation", "channel, inbox, customer, team"),
    "conversation.assigned": ("conversation", "changes: {assignee: [old, new]}"),
    "conversation.status_changed": ("conversation", "changes: {status: [old, new]}"),
    "message.received": ("conversation", "message, channel, customer, new_conversation"),
    "message.sent": ("conversation", "message, author"),
    "ticket.created": ("ticket", "fields: the ticket's fields"),
    "ticket.updated": ("ticket", "changes: {field: [old, new]}"),
    "ticket.status_changed": ("ticket", "changes: {status: [old, new]}"),
    "ticket.comment_added": ("ticket", "comment, public, author, by_customer"),
    "ticket.stage_changed": (
        "ticket",
        "machine, changes: {stage: [old, new]}, team, due_at (the stage's SLA)",
    ),
    "sla.warning": ("ticket", "target (first_response|resolution), due_at"),
    "sla.breached": ("ticket", "target (first_response|resolution), due_at"),
    "callback.requested": ("callback", "phone, customer, preferred time"),
    "schedule.tick": ("", "the time; emitted by the scheduler for time-based rules"),
}


@dataclass(frozen=True)
class Event:
    name: str
    subject_type: str
    subject_id: int | None
    data: dict[str, Any] = field(default_factory=dict)
    actor_id: int | None = None
    chain: int = 0
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    occurred_at: dt.datetime = field(default_factory=timezone.now)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "subject_type": self.subject_type,
            "subject_id": self.subject_id,
            "data": self.data,
            "actor_id": self.actor_id,
            "chain": self.chain,
            "occurred_at": self.occurred_at.isoformat(),
        }


Handler = Callable[[Event], None]
_handlers: list[tuple[tuple[str, ...], Handler]] = []
_chain: contextvars.ContextVar[int] = contextvars.ContextVar("ecrm_event_chain", default=0)
_muted: contextvars.ContextVar[bool] = contextvars.ContextVar("ecrm_events_muted", default=False)


def subscribe(handler: Handler, *, names: tuple[str, ...] = ("",)) -> None:
    """Call `handler(event)` after commit for events whose name starts with one of `names`
    ("" = all; "ticket." = every ticket event). Subscribing the same handler twice is a no-op."""
    if any(h is handler for _, h in _handlers):
        return
    _handlers.append((tuple(names), handler))


def unsubscribe(handler: Handler) -> None:
    _handlers[:] = [(n, h) for n, h in _handlers if h is not handler]


def has_subscribers(name: str) -> bool:
    return any(name.startswith(p) for names, _ in _handlers for p in names)


def current_chain() -> int:
    return _chain.get()


@contextlib.contextmanager
def caused_by(event: Event) -> Iterator[None]:
    """Events emitted inside this block were caused by `event` (one automated step deeper)."""
    token = _chain.set(event.chain + 1)
    try:
        yield
    finally:
        _chain.reset(token)


@contextlib.contextmanager
def muted() -> Iterator[None]:
    """Emit nothing inside this block: bulk loads (imports, seeding, restores) that would otherwise
    fire a rule or a webhook per row. Say in the caller why it is muted."""
    token = _muted.set(True)
    try:
        yield
    finally:
        _muted.reset(token)


def emit(
    name: str,
    *,
    subject_type: str,
    subject_id: int | None,
    data: dict[str, Any] | None = None,
    actor: Any = None,
) -> Event | None:
    """Publish `name` after the current transaction commits (at once when there is none).

    Returns the event, or None when nobody listens or events are muted (so emitting is nearly free
    on hot paths without subscribers)."""
    if name not in EVENT_NAMES:
        raise ValueError(f"unknown event name {name!r}; add it to EVENT_NAMES")
    if _muted.get() or not has_subscribers(name):
        return None
    actor_id = getattr(actor, "pk", actor) if actor is not None else None
    event = Event(
        name=name,
        subject_type=subject_type,
        subject_id=subject_id,
        data=dict(data or {}),
        actor_id=actor_id if isinstance(actor_id, int) else None,
        chain=_chain.get(),
    )
    transaction.on_commit(lambda: dispatch(event))
    return event


def dispatch(event: Event) -> None:
    """Run the handlers for `event` now (emit calls this after commit; tests and replays may too)."""
    for names, handler in list(_handlers):
        if not any(event.name.startswith(p) for p in names):
            continue
        token = _chain.set(event.chain)
        try:
            handler(event)
        except Exception:  # one listener's failure never breaks the write or the others
            logger.exception("event handler %r failed on %s", handler, event.name)
        finally:
            _chain.reset(token)


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """{field: [old, new]} for the fields whose value differs, as JSON-friendly values."""
    out: dict[str, list[Any]] = {}
    for key, new in after.items():
        old = before.get(key)
        if old != new:
            out[key] = [plain(old), plain(new)]
    return out


def plain(value: Any) -> Any:
    """A JSON-friendly copy of a value (dates as ISO text, model instances as their pk)."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if hasattr(value, "pk"):
        return value.pk
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple | set):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return str(value)
