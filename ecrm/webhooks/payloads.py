"""What a webhook carries: the event envelope plus a snapshot of its subject, so the receiver need not
call back for the basics. One small serializer per subject type; unknown types send the envelope only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ecrm.core.audit import snapshot
from ecrm.core.events import Event

SubjectSerializer = Callable[[int], dict[str, Any] | None]
SUBJECTS: dict[str, SubjectSerializer] = {}


def subject(kind: str) -> Callable[[SubjectSerializer], SubjectSerializer]:
    def register(fn: SubjectSerializer) -> SubjectSerializer:
        SUBJECTS[kind] = fn
        return fn

    return register


def _one(model, pk: int, fields: list[str]) -> dict[str, Any] | None:
    obj = model.objects.filter(pk=pk).first()
    return snapshot(obj, fields) if obj is not None else None


@subject("ticket")
def _ticket(pk: int) -> dict[str, Any] | None:
    from ecrm.service.models import Ticket

    fields = ["id", "number", "subject", "type", "priority", "status", "source", "team", "assignee",
              "customer", "order", "created_at", "updated_at", "solved_at", "closed_at",
              "first_response_due", "resolution_due", "custom_fields"]  # fmt: skip
    data = _one(Ticket, pk, fields)
    if data is not None:
        tags = Ticket.tags.through.objects.filter(ticket_id=pk).values_list("tickettag__name", flat=True)
        data["tags"] = sorted(tags)
    return data


@subject("order")
def _order(pk: int) -> dict[str, Any] | None:
    from ecrm.commerce.models import Order, OrderLine

    fields = ["id", "external_id", "customer", "status", "channel", "placed_at", "subtotal", "shipping",
              "discount", "total", "currency", "shipping_city", "shipping_country", "tracking_number"]  # fmt: skip
    data = _one(Order, pk, fields)
    if data is not None:
        lines = OrderLine.objects.filter(order_id=pk).order_by("line_no")
        data["lines"] = [snapshot(line, ["line_no", "sku", "name", "quantity", "unit_price", "line_total"])
                         for line in lines]  # fmt: skip
    return data


@subject("customer")
def _customer(pk: int) -> dict[str, Any] | None:
    from ecrm.customers.models import Customer

    fields = ["id", "display_name", "first_name", "last_name", "email", "phone", "locale", "city", "country",
              "lifecycle_stage", "status", "custom_attributes", "created_at", "updated_at"]  # fmt: skip
    return _one(Customer, pk, fields)


@subject("conversation")
def _conversation(pk: int) -> dict[str, Any] | None:
    from ecrm.conversations.models import Conversation

    fields = ["id", "inbox", "channel", "customer", "team", "assignee", "status", "subject",
              "last_message_at", "created_at", "updated_at"]  # fmt: skip
    return _one(Conversation, pk, fields)


def event_payload(event: Event) -> dict[str, Any]:
    """The JSON body of an event delivery: {"id", "name", ..., "data", "subject": {...} | null}."""
    body = event.as_dict()
    serializer = SUBJECTS.get(event.subject_type)
    body["subject"] = serializer(event.subject_id) if serializer and event.subject_id is not None else None
    return body
