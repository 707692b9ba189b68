"""Returns and refunds on order lines. The commerce `Return` row holds quantity, status and refund
amount (one source of truth); `ReturnRequest` adds who asked, from where, and the ticket."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from ecrm.commerce.models import OrderLine, OrderStatus, Return, ReturnStatus
from ecrm.core.audit import record_audit
from ecrm.core.exceptions import NotFound, ValidationFailed
from ecrm.core.models import User
from ecrm.core.permissions import check_perm
from ecrm.customers.models import Customer

from ..models import ReturnRequest, Ticket, TicketSource, TicketType
from .tickets import _check_staff, check_ticket_visible, do_create_ticket, log

# requested -> approved -> received -> refunded; any step before refunded may be rejected
TRANSITIONS: dict[str, set[str]] = {
    ReturnStatus.REQUESTED: {ReturnStatus.APPROVED, ReturnStatus.REJECTED},
    ReturnStatus.APPROVED: {ReturnStatus.RECEIVED, ReturnStatus.REJECTED},
    ReturnStatus.RECEIVED: {ReturnStatus.REFUNDED, ReturnStatus.REJECTED},
    ReturnStatus.REFUNDED: set(),
    ReturnStatus.REJECTED: set(),
}


def _decimal(value: Any, field: str) -> Decimal:
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError, TypeError):
        raise ValidationFailed("Not a number.", fields={field: "must be a number"}) from None
    if not number.is_finite():
        raise ValidationFailed("Not a number.", fields={field: "must be a number"})
    return number


def returnable_quantity(line: OrderLine) -> Decimal:
    """Ordered minus already returned (every return that was not rejected)."""
    taken = (
        Return.objects.filter(order_line=line)
        .exclude(status=ReturnStatus.REJECTED)
        .aggregate(q=Sum("quantity"))["q"]
    )
    return line.quantity - (taken or Decimal(0))


def refundable_amount(line: OrderLine, *, exclude_return_id: int | None = None) -> Decimal:
    qs = Return.objects.filter(order_line=line, status=ReturnStatus.REFUNDED)
    if exclude_return_id:
        qs = qs.exclude(pk=exclude_return_id)
    return line.line_total - (qs.aggregate(s=Sum("refund_amount"))["s"] or Decimal(0))


def do_request_return(
    *,
    actor: Any,
    customer: Customer,
    order_line: OrderLine,
    quantity: Any,
    reason: str,
    ticket: Ticket | None = None,
) -> ReturnRequest:
    """Ask to return `quantity` of an order line of the customer's. Without a ticket, a return/refund
    ticket is opened so an agent works it. `actor` None = the customer in the portal."""
    _check_staff(actor)
    order = order_line.order
    if order.customer_id != customer.pk:
        raise NotFound("No such order line.")  # a customer must not learn about others' orders
    qty = _decimal(quantity, "quantity")
    reason = (reason or "").strip()
    errors: dict[str, str] = {}
    if not reason:
        errors["reason"] = "Tell us why."
    elif len(reason) > 255:
        errors["reason"] = "At most 255 characters."
    if order.status in (OrderStatus.CANCELLED, OrderStatus.PENDING):
        errors["order_line"] = "This order was not fulfilled, so nothing can be returned."
    if ticket is not None:
        check_ticket_visible(actor, ticket)
        if ticket.customer_id != customer.pk:
            errors["ticket"] = "This ticket is another customer's."
    with transaction.atomic():
        # lock the line: two requests at once must not both pass the quantity check
        line = OrderLine.objects.select_for_update().get(pk=order_line.pk)
        left = returnable_quantity(line)
        if qty <= 0:
            errors["quantity"] = "Must be more than zero."
        elif qty > left:
            errors["quantity"] = f"At most {left.normalize():f} can still be returned."
        if errors:
            raise ValidationFailed("The return request is not valid.", fields=errors)
        source = TicketSource.PORTAL if actor is None else TicketSource.CONSOLE
        if ticket is None:
            ticket = do_create_ticket(
                actor=actor,
                customer=customer,
                subject=f"Return: {line.name or line.sku} × {qty.normalize():f} (order {order.external_id})",
                body=reason,
                type=TicketType.RETURN_REFUND,
                order=order,
                source=source,
            )
        record = Return.objects.create(order=order, order_line=line, quantity=qty, reason=reason)
        request = ReturnRequest.objects.create(
            return_record=record,
            ticket=ticket,
            customer=customer,
            source=source,
            requested_by=actor if isinstance(actor, User) else None,
            created_at=timezone.now(),
        )
        log(ticket, "return_requested", actor, request=request.pk, line=line.pk, quantity=str(qty))
        record_audit(
            actor=actor, action="return.request", obj=record,
            after={"order_line": line.pk, "quantity": str(qty), "reason": reason, "ticket": ticket.pk},
        )  # fmt: skip
    return request


def do_set_return_status(
    *, return_request: ReturnRequest, actor: User, status: str, refund_amount: Any = None
) -> ReturnRequest:
    """Move a return along requested → approved → received → refunded (or rejected). Refunding is
    money out: managers only, at most the line total minus what was already refunded on it."""
    check_perm(actor, "service.configure" if status == ReturnStatus.REFUNDED else "service.edit")
    if return_request.ticket_id:
        check_ticket_visible(actor, return_request.ticket)
    if status not in ReturnStatus.values:
        raise ValidationFailed(
            "Unknown status.", fields={"status": f"must be one of {', '.join(ReturnStatus.values)}"}
        )
    with transaction.atomic():
        record = (
            Return.objects.select_for_update(of=("self",))
            .select_related("order_line")
            .get(pk=return_request.return_record_id)
        )
        if status not in TRANSITIONS[record.status]:
            raise ValidationFailed(
                f"A return that is {record.get_status_display().lower()} cannot become {status}.",
                fields={"status": "not allowed from " + record.status},
            )
        before = {"status": record.status, "refund_amount": record.refund_amount}
        if status == ReturnStatus.REFUNDED:
            amount = _decimal(refund_amount, "refund_amount")
            limit = (
                refundable_amount(record.order_line, exclude_return_id=record.pk)
                if record.order_line
                else None
            )
            if amount <= 0:
                raise ValidationFailed(
                    "The refund must be more than zero.", fields={"refund_amount": "must be > 0"}
                )
            if limit is not None and amount > limit:
                raise ValidationFailed(
                    "The refund is more than the line total.", fields={"refund_amount": f"at most {limit}"}
                )
            record.refund_amount = amount
        record.status = status
        record.save(update_fields=["status", "refund_amount", "updated_at"])
        after = {"status": record.status, "refund_amount": record.refund_amount}
        record_audit(actor=actor, action="return.status", obj=record, before=before, after=after)
        if return_request.ticket_id:
            log(return_request.ticket, "return_status", actor, request=return_request.pk,
                status=[before["status"], status], refund_amount=str(record.refund_amount or ""))  # fmt: skip
    return_request.return_record = record
    return return_request
