"""Domain events: published after commit, never on rollback, muted on bulk paths, chain depth kept.

Tests run inside a transaction that never commits, so they collect the on-commit callbacks with
pytest-django's `django_capture_on_commit_callbacks(execute=True)` and run them as a commit would."""

from __future__ import annotations

import pytest
from django.db import transaction

from ecrm.core import events


@pytest.fixture
def seen():
    got: list[events.Event] = []

    def handler(event: events.Event) -> None:
        got.append(event)

    events.subscribe(handler, names=("ticket.", "order."))
    yield got
    events.unsubscribe(handler)


def test_an_event_reaches_its_subscribers_only_after_commit(db, seen, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        events.emit("ticket.created", subject_type="ticket", subject_id=7, data={"fields": {}})
        assert seen == []
    assert len(callbacks) == 1
    assert [(e.name, e.subject_id) for e in seen] == [("ticket.created", 7)]


def test_a_rolled_back_write_publishes_nothing(db, seen, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            events.emit("order.placed", subject_type="order", subject_id=1)
            raise RuntimeError("boom")
    assert callbacks == [] and seen == []


def test_prefixes_filter_and_unknown_names_are_refused(db, seen, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        events.emit("customer.created", subject_type="customer", subject_id=1)
    assert seen == []  # other apps may listen to customer events; this handler asked for tickets and orders
    with pytest.raises(ValueError, match="unknown event"):
        events.emit("ticket.exploded", subject_type="ticket", subject_id=1)


def test_muted_blocks_emit_nothing_and_caused_by_counts_the_chain(
    db, seen, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        with events.muted():
            assert events.emit("order.placed", subject_type="order", subject_id=1) is None
        first = events.emit("order.placed", subject_type="order", subject_id=2)
        with events.caused_by(first):
            second = events.emit("ticket.updated", subject_type="ticket", subject_id=3)
    assert (first.chain, second.chain) == (0, 1)
    assert [e.subject_id for e in seen] == [2, 3]


def test_a_failing_handler_does_not_stop_the_others(db, seen, django_capture_on_commit_callbacks):
    def broken(event):
        raise RuntimeError("listener bug")

    events.subscribe(broken, names=("order.",))
    try:
        with django_capture_on_commit_callbacks(execute=True):
            events.emit("order.placed", subject_type="order", subject_id=9)
    finally:
        events.unsubscribe(broken)
    assert [e.subject_id for e in seen] == [9]
