"""Races that only a real database with concurrent transactions shows (PostgreSQL): a CTI that sends a
call's events at the same moment, and two reminder workers running at once."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection, connections
from django.utils import timezone

from ecrm.conversations.channels.callback import services as callback_services
from ecrm.conversations.channels.callback.services import do_request_callback, send_due_reminders
from ecrm.conversations.channels.phone.schemas import CallEventIn
from ecrm.conversations.channels.phone.services import do_record_call_event
from ecrm.conversations.models import CallbackRequest, CallRecord, Message
from ecrm.conversations.services import create_inbox
from ecrm.core.demo import ensure_demo_users
from ecrm.customers.models import Customer

pytestmark = pytest.mark.django_db(transaction=True)
T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


def run_together(*calls):
    """Start every call in its own thread at the same moment; return their results or exceptions."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i, fn):
        try:
            barrier.wait()
            results[i] = fn()
        except Exception as exc:  # noqa: BLE001 (reported to the test)
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


@pytest.fixture
def needs_postgres():
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite serialises them)")


def test_a_calls_events_arriving_at_once_make_one_record_and_one_message(needs_postgres):
    admin = {u.username: u for u in ensure_demo_users()}["admin"]
    inbox = create_inbox(actor=admin, name="Hotline", kind="phone", team=None)

    def post(kind, at):
        event = CallEventIn.model_validate({"event": kind, "call_id": "race-1", "direction": "inbound",
                                            "from": "13800138000", "to": "01088880000",
                                            "timestamp": (T0 + dt.timedelta(seconds=at)).isoformat()})  # fmt: skip
        return lambda: do_record_call_event(inbox=inbox, event=event).status

    results = run_together(post("start", 0), post("answer", 5), post("end", 65), post("start", 0))
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(results) == ["created", "duplicate", "updated", "updated"]
    call = CallRecord.objects.get()
    assert (call.started_at, call.answered_at, call.ended_at) == (
        T0, T0 + dt.timedelta(seconds=5), T0 + dt.timedelta(seconds=65),
    )  # fmt: skip
    message = Message.objects.get()
    assert sorted(message.metadata["call"]["events"]) == ["answer", "end", "start"]
    assert "1 min 00 s" in message.body_text and Customer.objects.count() == 1


def test_two_reminder_workers_at_once_remind_exactly_once(needs_postgres, monkeypatch):
    admin = {u.username: u for u in ensure_demo_users()}["admin"]
    inbox = create_inbox(actor=admin, name="Callbacks", kind="callback", team=None)
    for i in range(5):
        do_request_callback(
            inbox=inbox, phone=f"1380013800{i}", requested_for=timezone.now() + dt.timedelta(hours=1)
        )
    CallbackRequest.objects.update(requested_for=timezone.now() + dt.timedelta(minutes=5))
    published: list[int] = []
    lock = threading.Lock()

    def record(group, payload):
        with lock:
            published.append(payload["callback"])

    monkeypatch.setattr(callback_services, "publish", record)
    results = run_together(send_due_reminders, send_due_reminders, send_due_reminders)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(results) == 5 and sorted(published) == sorted(
        CallbackRequest.objects.values_list("pk", flat=True)
    )
    assert not CallbackRequest.objects.filter(reminder_sent_at__isnull=True).exists()
