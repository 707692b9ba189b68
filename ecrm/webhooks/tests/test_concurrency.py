"""Two workers on one delivery send it once (PostgreSQL, real commits), and a worker that died holding a
claim leaves the delivery to the sweep once the lease runs out."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection, connections
from django.utils import timezone

from ecrm.core.tests.http_testserver import Reply
from ecrm.webhooks import services
from ecrm.webhooks.models import Delivery, DeliveryStatus
from ecrm.webhooks.tasks import send_due


@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_for_one_delivery_send_it_once(endpoint, receiver):
    if connection.vendor != "postgresql":
        pytest.skip("needs a database that several threads can share (PostgreSQL)")
    ep = endpoint()
    receiver.replies = [Reply(200, b"ok", delay=0.3)] * 4
    now = timezone.now()
    ids = [Delivery.objects.create(endpoint=ep, event_name="x.y", payload={"n": n}, next_attempt_at=now).pk
           for n in range(2)]  # fmt: skip
    start = threading.Barrier(4)
    results: list[object] = []

    def worker(pk: int) -> None:
        try:
            start.wait()
            results.append(services.attempt_delivery(pk))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(pk,)) for pk in ids for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.pk for r in results if r is not None) == ids  # each delivery attempted by one worker
    assert sum(1 for r in results if r is None) == 2
    assert sorted(req.body for req in receiver.requests) == [b'{"n":0}', b'{"n":1}']
    assert list(Delivery.objects.order_by("pk").values_list("attempts", "status")) == [(1, "succeeded")] * 2


def test_a_claim_left_by_a_dead_worker_expires_and_the_sweep_sends_it(endpoint, receiver):
    ep = endpoint()
    now = timezone.now()
    d = Delivery.objects.create(endpoint=ep, event_name="x.y", payload={"n": 1}, next_attempt_at=now)
    # what a worker does first, then it is killed before sending
    assert Delivery.objects.filter(pk=d.pk, next_attempt_at__lte=now).update(
        next_attempt_at=now + services.LEASE
    )
    assert send_due(now=now + dt.timedelta(minutes=1)) == 0 and receiver.requests == []
    assert send_due(now=now + services.LEASE + dt.timedelta(seconds=1)) == 1
    d.refresh_from_db()
    assert (d.status, d.attempts, len(receiver.requests)) == (DeliveryStatus.SUCCEEDED, 1, 1)
