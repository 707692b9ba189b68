"""Creating tickets: the contract other apps call, validation, numbering, permissions, audit."""

from __future__ import annotations

import pytest

from ecrm.core.exceptions import NotFound, PermissionDenied, ValidationFailed
from ecrm.core.models import AuditLog
from ecrm.service.models import Ticket, TicketActivity, TicketStatus
from ecrm.service.selectors import access_ticket_for_user, tickets_for_customer
from ecrm.service.services import do_create_ticket

from . import factories as f


def test_portal_ticket_without_actor_is_numbered_logged_and_audited(cast):
    customer = f.customer()
    ticket = do_create_ticket(actor=None, customer=customer, subject="  Broken kettle  ", body="It leaks.",
                              type="complaint", priority="high", source="portal")  # fmt: skip
    ticket.refresh_from_db()
    assert ticket.reference == f"T-{1000 + ticket.pk}"
    assert (ticket.subject, ticket.description, ticket.type, ticket.priority, ticket.status, ticket.source) == (
        "Broken kettle", "It leaks.", "complaint", "high", TicketStatus.NEW, "portal",
    )  # fmt: skip
    assert list(TicketActivity.objects.filter(ticket=ticket).values_list("kind", flat=True)) == ["created"]
    audit = AuditLog.objects.get(action="ticket.create")
    assert (audit.object_id, audit.actor_label) == (str(ticket.pk), "system")
    assert list(tickets_for_customer(customer)) == [ticket]


def test_from_a_conversation_the_ticket_takes_its_team_and_links_it(cast):
    customer = f.customer()
    conv = f.conversation(customer, "Service CN")
    ticket = do_create_ticket(actor=cast["agent_li"], customer=customer, subject="Refund", conversation=conv)
    assert ticket.team.name == "Service CN"
    assert list(ticket.conversations.all()) == [conv]
    assert list(ticket.watchers.all()) == [cast["agent_li"]]


def test_bad_input_is_refused_field_by_field_and_nothing_is_stored(cast):
    customer, other = f.customer(), f.customer("Li Lei", "li@example.com")
    order = f.order(other, "SO-9")
    with pytest.raises(ValidationFailed) as err:
        do_create_ticket(
            actor=None, customer=customer, subject=" ", type="rant", priority="asap", order=order
        )
    assert set(err.value.fields) == {"subject", "type", "priority", "order"}
    assert Ticket.objects.count() == 0


def test_an_agent_of_another_team_cannot_open_a_ticket_on_a_conversation_they_cannot_see(cast):
    customer = f.customer()
    conv = f.conversation(customer, "Service CN")
    with pytest.raises(NotFound):
        do_create_ticket(actor=cast["agent_bob"], customer=customer, subject="x", conversation=conv)
    with pytest.raises(ValidationFailed) as err:
        do_create_ticket(actor=cast["agent_bob"], customer=customer, subject="x", team=f.team("Service CN"))
    assert "team" in err.value.fields
    assert Ticket.objects.count() == 0


@pytest.mark.parametrize("who", ["marketer", "analyst", "nobody"])
def test_roles_without_service_edit_are_refused_and_nothing_changes(cast, who):
    with pytest.raises(PermissionDenied):
        do_create_ticket(actor=cast[who], customer=f.customer(), subject="x")
    assert Ticket.objects.count() == 0


def test_agents_see_only_their_teams_unteamed_and_assigned_tickets(cast):
    customer = f.customer()
    cn = do_create_ticket(actor=None, customer=customer, subject="cn", team=f.team("Service CN"))
    en = do_create_ticket(actor=None, customer=customer, subject="en", team=f.team("Service EN"))
    none = do_create_ticket(actor=None, customer=customer, subject="none")
    assert access_ticket_for_user(cast["agent_li"], cn.pk) == cn
    assert access_ticket_for_user(cast["agent_li"], none.pk) == none
    with pytest.raises(NotFound):
        access_ticket_for_user(cast["agent_li"], en.pk)
    assert access_ticket_for_user(cast["manager"], en.pk) == en
