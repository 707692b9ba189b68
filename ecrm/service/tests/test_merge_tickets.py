"""Merging duplicate tickets: what moves, the closed link, the audit, and the refusals."""

from __future__ import annotations

import pytest
from django.urls import reverse

from ecrm.core.exceptions import NotFound, ValidationFailed
from ecrm.core.models import AuditLog
from ecrm.service.models import ReturnRequest, TicketActivity, TicketComment, TicketStatus
from ecrm.service.services import (
    do_add_comment,
    do_create_ticket,
    do_merge_tickets,
    do_request_return,
    do_update_ticket,
)

from . import factories as f


def test_merge_moves_conversations_comments_watchers_and_returns_and_closes_the_duplicate(cast, login):
    customer = f.customer()
    line = f.order(customer).lines.get()
    conv = f.conversation(customer, "Service CN")
    dup = do_create_ticket(actor=cast["agent_li"], customer=customer, subject="dup", conversation=conv)
    keep = do_create_ticket(
        actor=cast["manager"], customer=customer, subject="keep", team=f.team("Service CN")
    )
    do_add_comment(ticket=dup, actor=cast["agent_li"], body="from dup", public=False)
    do_update_ticket(ticket=dup, actor=cast["agent_li"], changes={"tags": ["fragile"]})
    request = do_request_return(
        actor=None, customer=customer, order_line=line, quantity=1, reason="x", ticket=dup
    )

    response = login("agent_li").post(reverse("service:merge", args=[dup.pk]), {"target": keep.reference})
    assert response.status_code == 302 and response["Location"] == reverse("service:detail", args=[keep.pk])
    dup.refresh_from_db()
    assert (dup.status, dup.merged_into, dup.closed_at is not None) == (TicketStatus.CLOSED, keep, True)
    assert list(keep.conversations.all()) == [conv] and not dup.conversations.exists()
    assert list(TicketComment.objects.values_list("ticket_id", flat=True)) == [keep.pk]
    assert set(keep.watchers.all()) == {cast["agent_li"], cast["manager"]}
    assert list(keep.tags.values_list("name", flat=True)) == ["fragile"]
    assert ReturnRequest.objects.get(pk=request.pk).ticket == keep
    audit = AuditLog.objects.get(action="ticket.merge")
    assert audit.object_id == str(dup.pk) and audit.after["moved"]["comments"] == [
        TicketComment.objects.get().pk
    ]
    assert TicketActivity.objects.filter(ticket=keep, kind="merged_from").count() == 1
    # irreversible: the merged ticket takes no more changes
    with pytest.raises(ValidationFailed):
        do_update_ticket(ticket=dup, actor=cast["manager"], changes={"status": "open"})
    with pytest.raises(ValidationFailed):
        do_merge_tickets(source=dup, target=keep, actor=cast["manager"])


def test_merge_refusals_change_nothing(cast):
    a, b = f.customer(), f.customer("Other", "o@example.com")
    t1 = do_create_ticket(actor=None, customer=a, subject="1")
    t2 = do_create_ticket(actor=None, customer=b, subject="2")
    t3 = do_create_ticket(actor=None, customer=a, subject="3", team=f.team("Service EN"))
    with pytest.raises(ValidationFailed):
        do_merge_tickets(source=t1, target=t1, actor=cast["manager"])
    with pytest.raises(ValidationFailed):
        do_merge_tickets(source=t1, target=t2, actor=cast["manager"])  # another customer
    with pytest.raises(NotFound):
        do_merge_tickets(source=t1, target=t3, actor=cast["agent_li"])  # target on another team
    for t in (t1, t2, t3):
        t.refresh_from_db()
        assert (t.status, t.merged_into_id) == ("new", None)
    assert not AuditLog.objects.filter(action="ticket.merge").exists()
