"""The customer's side: replies from the portal reopen waiting tickets; others' tickets are 'not found'."""

from __future__ import annotations

import pytest

from ecrm.core.exceptions import NotFound, ValidationFailed
from ecrm.service.models import TicketComment, TicketStatus
from ecrm.service.selectors import access_customer_ticket, public_comments
from ecrm.service.services import do_add_comment, do_create_ticket, do_customer_reply, do_set_ticket_status

from . import factories as f


def test_a_reply_reopens_a_pending_ticket_and_is_public(cast):
    customer = f.customer()
    ticket = do_create_ticket(
        actor=None, customer=customer, subject="Where is my parcel?", team=f.team("Service CN")
    )
    do_add_comment(ticket=ticket, actor=cast["agent_li"], body="Which order?", public=True)
    do_add_comment(ticket=ticket, actor=cast["agent_li"], body="internal only", public=False)
    do_set_ticket_status(ticket=ticket, actor=cast["agent_li"], status="pending")
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.PENDING and ticket.paused_at is not None
    message = do_customer_reply(ticket=ticket, customer=customer, body="SO-1, thanks")
    ticket.refresh_from_db()
    assert (message.direction, message.body_text) == ("in", "SO-1, thanks")
    assert ticket.status == TicketStatus.OPEN and ticket.paused_at is None
    assert [c.body for c in public_comments(ticket)] == ["Which order?", "SO-1, thanks"]


def test_another_customer_cannot_reply_or_read_and_nothing_changes(cast):
    owner, stranger = f.customer(), f.customer("Mallory", "m@example.com")
    ticket = do_create_ticket(actor=None, customer=owner, subject="Mine")
    with pytest.raises(NotFound):
        do_customer_reply(ticket=ticket, customer=stranger, body="hi")
    with pytest.raises(NotFound):
        access_customer_ticket(stranger, ticket.pk)
    assert TicketComment.objects.count() == 0


def test_an_empty_reply_and_a_reply_to_a_closed_ticket_are_refused(cast):
    customer = f.customer()
    ticket = do_create_ticket(actor=None, customer=customer, subject="x")
    with pytest.raises(ValidationFailed):
        do_customer_reply(ticket=ticket, customer=customer, body="   ")
    do_set_ticket_status(ticket=ticket, actor=cast["manager"], status="closed")
    with pytest.raises(ValidationFailed) as err:
        do_customer_reply(ticket=ticket, customer=customer, body="hello?")
    assert err.value.code == "ticket_closed"
    assert TicketComment.objects.count() == 0


def test_a_reply_on_a_merged_duplicate_lands_on_the_ticket_it_was_merged_into(cast):
    from ecrm.service.services import do_merge_tickets

    customer = f.customer()
    dup = do_create_ticket(actor=None, customer=customer, subject="dup")
    keep = do_create_ticket(actor=None, customer=customer, subject="keep")
    do_merge_tickets(source=dup, target=keep, actor=cast["manager"])
    comment = do_customer_reply(ticket=dup, customer=customer, body="hello again")
    assert comment.ticket_id == keep.pk
