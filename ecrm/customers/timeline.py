"""The unified customer timeline: one newest-first stream merged from every source.

Customers cannot import the apps above it (commerce, ingest, conversations...), so those apps
register a source in their AppConfig.ready(): a callable `(customer, before, limit) -> [TimelineEntry]`
returning the customer's newest `limit` entries at or before `before` (None = now), newest first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.urls import reverse
from django.utils.translation import gettext as _

from .models import Customer, Note


@dataclass(frozen=True)
class TimelineEntry:
    """One thing that happened to a customer, in any app."""

    at: dt.datetime
    kind: str  # "event", "order", "note", ... (also the CSS badge)
    key: str  # unique within the timeline ("order:42"); the tie-breaker for equal times
    title: str
    body: str = ""
    url: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def sort_key(self) -> tuple[dt.datetime, str]:
        return (self.at, self.key)


TimelineSource = Callable[[Customer, "dt.datetime | None", int], list[TimelineEntry]]
_SOURCES: dict[str, TimelineSource] = {}


_SCOPED: set[str] = set()


def register_timeline_source(name: str, source: TimelineSource, *, scoped: bool = False) -> None:
    """Add (or replace, so a reloaded app does not register twice) a named timeline source.
    A `scoped` source is called with the viewer as a fourth argument and shows only what they may
    see (an agent sees their own teams' conversations, not another team's)."""
    _SOURCES[name] = source
    if scoped:
        _SCOPED.add(name)
    else:
        _SCOPED.discard(name)


def timeline_sources() -> dict[str, TimelineSource]:
    return dict(_SOURCES)


@dataclass
class TimelinePage:
    entries: list[TimelineEntry]
    next_cursor: str | None  # "<iso time>|<key>" of the last entry shown, when there may be more


def encode_cursor(entry: TimelineEntry) -> str:
    return f"{entry.at.isoformat()}|{entry.key}"


def decode_cursor(cursor: str | None) -> tuple[dt.datetime, str] | None:
    if not cursor or "|" not in cursor:
        return None
    at_text, key = cursor.split("|", 1)
    try:
        at = dt.datetime.fromisoformat(at_text)
    except ValueError:
        return None
    if at.tzinfo is None:
        return None
    return at, key


def build_timeline(
    customer: Customer, *, user: Any = None, cursor: str | None = None, limit: int = 30
) -> TimelinePage:
    """Merge the sources by time. Each source is asked for entries at or before the cursor's time
    (ties at exactly that time are possible across sources), then everything not strictly older than
    the cursor in (time, key) order is dropped, so paging never repeats nor skips an entry."""
    position = decode_cursor(cursor)
    before = position[0] if position else None
    entries: list[TimelineEntry] = []
    for name, source in _SOURCES.items():
        # One extra per source tells us whether there is more after this page.
        if name in _SCOPED:
            entries.extend(source(customer, before, limit + 1, user))  # type: ignore[call-arg]
        else:
            entries.extend(source(customer, before, limit + 1))
    if position:
        entries = [e for e in entries if e.sort_key < position]
    entries.sort(key=lambda e: e.sort_key, reverse=True)
    page = entries[:limit]
    more = len(entries) > limit
    return TimelinePage(entries=page, next_cursor=encode_cursor(page[-1]) if more and page else None)


def note_entry(note: Note) -> TimelineEntry:
    author = note.author.get_full_name() or note.author.get_username() if note.author_id else _("System")
    return TimelineEntry(
        at=note.created_at,
        kind="note",
        key=f"note:{note.pk:012d}",
        title=_("Note by %(author)s") % {"author": author},
        body=note.body,
        url=reverse("customers:detail", args=[note.customer_id]) + f"#note-{note.pk}",
    )


def notes_source(customer: Customer, before: dt.datetime | None, limit: int) -> list[TimelineEntry]:
    qs = Note.objects.filter(customer=customer).select_related("author")
    if before is not None:
        qs = qs.filter(created_at__lte=before)
    return [note_entry(n) for n in qs.order_by("-created_at", "-id")[:limit]]


register_timeline_source("customers.notes", notes_source)
