"""How the service desk plugs into lower layers without them importing it: conversation hooks
(the SLA clock), a thread resolver for "[T-1042]" in subjects, the conversation sidebar panel,
the customer 360 panel and the customer timeline source. Registered in apps.ServiceConfig.ready()."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import OPEN_STATUSES, Priority, Ticket, TicketStatus, TicketType

TICKET_REF = re.compile(r"\[#?T-(\d{1,10})\]", re.IGNORECASE)


def on_inbound(conversation_id: int, message_id: int, created: bool) -> None:
    """The customer wrote in a conversation linked to tickets: resume tickets waiting on them."""
    from ecrm.conversations.models import Message

    from .services.tickets import _customer_activity

    linked = Ticket.objects.filter(conversations__id=conversation_id, merged_into__isnull=True).exclude(
        status=TicketStatus.CLOSED
    )
    if not linked.exists():
        return  # most chat and email messages belong to no ticket: no write transaction for them
    metadata = Message.objects.filter(pk=message_id).values_list("metadata", flat=True).first() or {}
    if metadata.get("auto"):
        return  # an auto-reply or a bounce is not the customer answering: the clock stays paused
    with transaction.atomic():
        tickets = (
            Ticket.objects.select_for_update(of=("self",))
            .select_related("sla_policy")
            .filter(conversations__id=conversation_id, merged_into__isnull=True)
            .exclude(status=TicketStatus.CLOSED)
        )
        now = timezone.now()
        for ticket in tickets:
            _customer_activity(ticket, now, message=message_id, conversation=conversation_id)


def on_reply(conversation_id: int, message_id: int) -> None:
    """An agent replied in a linked conversation: that is the ticket's first response."""
    from ecrm.conversations.models import Message

    from .services.tickets import _mark_first_response

    waiting = Ticket.objects.filter(
        conversations__id=conversation_id, status__in=OPEN_STATUSES, first_response_at__isnull=True
    )
    if not waiting.exists():
        return  # no ticket waits on a first response here: no write transaction
    message = Message.objects.filter(pk=message_id).values("created_at", "author_id").first()
    if message is None:
        return
    with transaction.atomic():
        tickets = waiting.select_for_update()
        for ticket in tickets:
            _mark_first_response(ticket, message["created_at"])
            if ticket.status == TicketStatus.NEW:
                Ticket.objects.filter(pk=ticket.pk).update(
                    status=TicketStatus.OPEN, updated_at=timezone.now()
                )


def resolve_thread(data: Any) -> int | None:
    """Mail whose subject names a ticket ("Re: [T-1042] ...") joins that ticket's conversation on the
    same inbox, but only when the sender is that ticket's customer: a guessed number never attaches
    mail to someone else's case."""
    match = TICKET_REF.search(data.subject or "")
    if not match:
        return None
    from ecrm.core.exceptions import ValidationFailed
    from ecrm.customers.models import Identity
    from ecrm.customers.services import normalize_identities

    try:
        pairs = normalize_identities(data.identities)
    except ValidationFailed:  # malformed identities: not ours to reject here, just no match
        return None
    ticket = Ticket.objects.filter(number=int(match.group(1))).only("id", "customer_id").first()
    if ticket is None or not pairs:
        return None
    q = Identity.objects.filter(customer_id=ticket.customer_id)
    if not any(q.filter(kind=kind, value=value).exists() for kind, value in pairs):
        return None
    return (
        ticket.conversations.filter(inbox=data.inbox, customer_id=ticket.customer_id)
        .order_by("-last_message_at", "-id")
        .values_list("id", flat=True)
        .first()
    )


def conversation_panel(conversation: Any, user: Any) -> dict | None:
    """Sidebar of the conversation page: its tickets and a form to open one."""
    from ecrm.core.permissions import has_perm

    from .selectors import ticket_visibility_q

    if not has_perm(user, "service.view"):
        return None
    linked = list(
        Ticket.objects.filter(conversations=conversation)
        .filter(ticket_visibility_q(user))
        .order_by("-created_at")[:10]
    )
    open_for_customer = list(
        Ticket.objects.filter(customer_id=conversation.customer_id, status__in=OPEN_STATUSES)
        .filter(ticket_visibility_q(user))
        .exclude(pk__in=[t.pk for t in linked])
        .order_by("-created_at")[:5]
    )
    return {
        "title": _("Tickets"),
        "template": "service/partials/_conversation_panel.html",
        "order": 20,
        "context": {
            "linked": linked,
            "open_for_customer": open_for_customer,
            "conversation": conversation,
            "can_edit": has_perm(user, "service.edit"),
            "types": TicketType.choices,
            "priorities": Priority.choices,
        },
    }


def profile_panel(customer: Any, user: Any) -> dict | None:
    """Customer 360: recent tickets (visible ones), satisfaction answers and NPS."""
    from ecrm.core.permissions import has_perm

    from .selectors import customer_satisfaction, ticket_visibility_q

    if not has_perm(user, "service.view") and not has_perm(user, "surveys.send"):
        return None
    tickets = []
    if has_perm(user, "service.view"):
        tickets = list(
            Ticket.objects.filter(customer=customer)
            .filter(ticket_visibility_q(user))
            .order_by("-created_at")[:10]
        )
    return {
        "template": "service/partials/_profile_panel.html",
        "tickets": tickets,
        **customer_satisfaction(customer),
    }


def timeline_source(customer: Any, before: dt.datetime | None, limit: int, user: Any = None) -> list:
    """Tickets on the customer timeline: one entry per ticket opened (only tickets the viewer sees)."""
    from ecrm.core.permissions import has_perm
    from ecrm.customers.timeline import TimelineEntry

    from .selectors import ticket_visibility_q

    if user is None or not has_perm(user, "service.view"):
        return []
    qs = Ticket.objects.filter(customer=customer).filter(ticket_visibility_q(user))
    if before is not None:
        qs = qs.filter(created_at__lte=before)
    return [
        TimelineEntry(
            at=t.created_at,
            kind="ticket",
            key=f"ticket:{t.pk:012d}",
            title=f"{_('Ticket')} {t.reference} · {t.get_type_display()} · {t.get_status_display()}",
            body=t.subject,
            url=reverse("service:detail", args=[t.pk]),
            meta={"status": t.status, "priority": t.priority},
        )
        for t in qs.order_by("-created_at", "-id")[:limit]
    ]


def register_all() -> None:
    from ecrm.conversations.panels import register_conversation_panel
    from ecrm.conversations.services import (
        register_inbound_hook,
        register_reply_hook,
        register_thread_resolver,
    )
    from ecrm.customers.selectors import register_profile_panel
    from ecrm.customers.timeline import register_timeline_source

    register_inbound_hook(on_inbound)
    register_reply_hook(on_reply)
    register_thread_resolver(resolve_thread)
    register_conversation_panel("service.tickets", conversation_panel)
    register_profile_panel(profile_panel)
    register_timeline_source("tickets", timeline_source, scoped=True)
