"""Two people take the same step at the same moment (PostgreSQL, real transactions): the ticket and
its flow state are locked, so one step happens and the other is refused, never both."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection, connections

from ecrm.core.exceptions import ValidationFailed
from ecrm.core.models import User
from ecrm.service.demo import seed_ticket_flows
from ecrm.service.flows.models import TicketFlowState, TicketFlowStep
from ecrm.service.flows.services import check_stage_sla, do_transition
from ecrm.service.services import do_create_ticket

from . import factories

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks")


def run_together(*calls):
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def worker(i, fn):
        try:
            barrier.wait()
            results[i] = fn()
        except Exception as exc:  # noqa: BLE001 - collected for the assertions
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i, fn)) for i, fn in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


@pytest.mark.django_db(transaction=True)
def test_the_same_step_twice_at_once_happens_once():
    from ecrm.core.demo import ensure_demo_users

    ensure_demo_users()
    seed_ticket_flows()
    # two people who both still see the ticket after the handoff (managers see every team's)
    li, manager, admin = (User.objects.get(username=n) for n in ("agent_li", "manager", "admin"))
    for _ in range(5):
        ticket = do_create_ticket(
            actor=li, customer=factories.customer(email=None), subject="x", type="complaint"
        )
        results = run_together(
            lambda t=ticket: do_transition(ticket=t, to_stage="warehouse_check", actor=admin, note="alice"),
            lambda t=ticket: do_transition(ticket=t, to_stage="warehouse_check", actor=manager, note="mia"),
        )
        done = [r for r in results if isinstance(r, TicketFlowState)]
        refused = [r for r in results if isinstance(r, ValidationFailed)]
        assert (len(done), len(refused)) == (1, 1), results
        assert refused[0].fields["stage"].startswith("Cannot go from Warehouse check to Warehouse check")
        assert TicketFlowStep.objects.filter(ticket=ticket, to_key="warehouse_check").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_breach_checks_at_once_fire_each_breach_once():
    from ecrm.core.demo import ensure_demo_users
    from ecrm.service.models import TicketActivity

    ensure_demo_users()
    seed_ticket_flows()
    li = User.objects.get(username="agent_li")
    tickets = [
        do_create_ticket(actor=li, customer=factories.customer(email=None), subject=f"x{i}", type="complaint")
        for i in range(6)
    ]
    later = max(s.due_at for s in TicketFlowState.objects.all()) + dt.timedelta(minutes=1)
    results = run_together(lambda: check_stage_sla(later), lambda: check_stage_sla(later))
    assert sum(results) == 6, results  # split between the two runs however the race goes
    assert TicketActivity.objects.filter(kind="sla.stage.breach", ticket__in=tickets).count() == 6
