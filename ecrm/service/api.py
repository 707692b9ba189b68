"""REST endpoints of the service desk (mounted under /api/v1/service). Integration keys read every
ticket and write with a write key; console users (session) see and change only what their role and
teams allow — the same selectors and services as the pages."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router
from ninja.responses import Status

from ecrm.commerce.models import Order, OrderLine
from ecrm.core.api_auth import actor_of
from ecrm.core.exceptions import NotFound, PermissionDenied, ValidationFailed
from ecrm.core.models import ApiKey, Team, User
from ecrm.core.permissions import check_perm

from . import selectors
from .models import ReturnRequest, Ticket
from .schemas import (
    CommentIn,
    CommentOut,
    MergeIn,
    ReturnIn,
    ReturnOut,
    ReturnStatusIn,
    TicketCreateIn,
    TicketDetailOut,
    TicketOut,
    TicketPageOut,
    TicketUpdateIn,
)
from .services import (
    do_add_comment,
    do_create_ticket,
    do_merge_tickets,
    do_request_return,
    do_set_return_status,
    do_update_ticket,
)

router = Router(tags=["service"])


def _require_write(request: HttpRequest) -> None:
    principal = request.auth
    if isinstance(principal, ApiKey):
        if not principal.allows_write():
            raise PermissionDenied("This API key is read-only.", code="read_only_key")
        return
    check_perm(principal, "service.edit")


def _person(request: HttpRequest) -> User:
    if not isinstance(request.auth, User):
        raise PermissionDenied("Only a signed-in console user can do that.", code="person_required")
    return request.auth


def ticket_out(ticket: Ticket, tags: list[str] | None = None) -> dict:
    data = {
        f: getattr(ticket, f)
        for f in TicketOut.model_fields
        if hasattr(ticket, f) and f not in ("number", "tags")
    }
    data["number"] = ticket.reference
    data["tags"] = tags if tags is not None else [t.name for t in ticket.tags.all()]
    return data


def _team(team_id: int | None) -> Team | None:
    if team_id is None:
        return None
    team = Team.objects.filter(pk=team_id).first()
    if team is None:
        raise ValidationFailed("No such team.", fields={"team_id": "unknown"})
    return team


def _assignee(user_id: int | None) -> User | None:
    if user_id is None:
        return None
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        raise ValidationFailed("No such user.", fields={"assignee_id": "unknown"})
    return user


@router.get("/tickets", response=TicketPageOut, summary="List tickets (keyset pages, newest activity first)")
def list_tickets(request: HttpRequest, view: str = "all", status: str = "any", priority: str = "",
                 type: str = "", q: str = "", tag: str = "", customer: int | None = None,
                 after: int | None = None, limit: int = 50):  # fmt: skip
    filters = selectors.TicketFilters(view=view, status=status, priority=priority, type=type, q=q[:100], tag=tag,
                                      customer=customer)  # fmt: skip
    rows, next_after = selectors.ticket_page(request.auth, filters, after=after, limit=limit)
    tags = selectors.tag_names_for([t.pk for t in rows])
    return {"items": [ticket_out(t, tags.get(t.pk, [])) for t in rows], "next_after": next_after}


@router.post("/tickets", response={201: TicketOut}, summary="Open a ticket")
def create_ticket(request: HttpRequest, payload: TicketCreateIn):
    _require_write(request)
    from ecrm.customers.models import Customer

    customer = Customer.objects.filter(pk=payload.customer_id).first()
    if customer is None:
        raise ValidationFailed("No such customer.", fields={"customer_id": "unknown"})
    if isinstance(request.auth, User):
        from ecrm.customers.selectors import access_customer_for_user

        access_customer_for_user(request.auth, customer.pk)
    order = None
    if payload.order_number:
        order = Order.objects.filter(external_id=payload.order_number).first()
        if order is None:
            raise ValidationFailed("No such order.", fields={"order_number": "unknown"})
    conversation = None
    if payload.conversation_id:
        from ecrm.conversations.models import Conversation

        conversation = Conversation.objects.filter(pk=payload.conversation_id).first()
        if conversation is None:
            raise ValidationFailed("No such conversation.", fields={"conversation_id": "unknown"})
    ticket = do_create_ticket(
        actor=actor_of(request), customer=customer, subject=payload.subject, body=payload.body, type=payload.type,
        priority=payload.priority, conversation=conversation, order=order, source="api",
        team=_team(payload.team_id), assignee=_assignee(payload.assignee_id), tags=payload.tags,
        custom_fields=payload.custom_fields,
    )  # fmt: skip
    return Status(201, ticket_out(Ticket.objects.get(pk=ticket.pk)))


@router.get("/tickets/{int:ticket_id}", response=TicketDetailOut, summary="One ticket with its comments")
def get_ticket(request: HttpRequest, ticket_id: int):
    ticket = selectors.access_ticket_for_user(request.auth, ticket_id)
    comments = [
        {
            "id": c.pk,
            "direction": c.direction,
            "body": c.body,
            "author_id": c.author_id,
            "created_at": c.created_at,
        }
        for c in ticket.comments.order_by("created_at", "id")
    ]
    return {
        **ticket_out(ticket),
        "comments": comments,
        "conversation_ids": list(ticket.conversations.values_list("id", flat=True)),
    }


@router.patch("/tickets/{int:ticket_id}", response=TicketOut, summary="Change a ticket's fields or status")
def update_ticket(request: HttpRequest, ticket_id: int, payload: TicketUpdateIn):
    _require_write(request)
    ticket = selectors.access_ticket_for_user(request.auth, ticket_id)
    data = payload.model_dump(exclude_unset=True)
    changes = {k: v for k, v in data.items() if k not in ("team_id", "assignee_id")}
    if "team_id" in data:
        changes["team"] = _team(data["team_id"])
    if "assignee_id" in data:
        changes["assignee"] = _assignee(data["assignee_id"])
    ticket = do_update_ticket(ticket=ticket, actor=actor_of(request), changes=changes)
    return ticket_out(Ticket.objects.get(pk=ticket.pk))


@router.post(
    "/tickets/{int:ticket_id}/comments", response={201: CommentOut}, summary="Comment (public or internal)"
)
def comment_ticket(request: HttpRequest, ticket_id: int, payload: CommentIn):
    user = _person(request)
    ticket = selectors.access_ticket_for_user(user, ticket_id)
    c = do_add_comment(ticket=ticket, actor=user, body=payload.body, public=payload.public)
    return Status(201, {"id": c.pk, "direction": c.direction, "body": c.body, "author_id": c.author_id,
                        "created_at": c.created_at})  # fmt: skip


@router.post("/tickets/{int:ticket_id}/merge", response=TicketOut, summary="Merge this ticket into another")
def merge_ticket(request: HttpRequest, ticket_id: int, payload: MergeIn):
    user = _person(request)
    source = selectors.access_ticket_for_user(user, ticket_id)
    try:
        target = selectors.access_ticket_for_user(user, payload.target_id)
    except NotFound:
        raise ValidationFailed("No such ticket.", fields={"target_id": "unknown"}) from None
    target = do_merge_tickets(source=source, target=target, actor=user)
    return ticket_out(Ticket.objects.get(pk=target.pk))


def return_out(r: ReturnRequest) -> dict:
    rec = r.return_record
    return {"id": r.pk, "return_id": rec.pk, "ticket_id": r.ticket_id, "customer_id": r.customer_id,
            "order_line_id": rec.order_line_id, "quantity": f"{rec.quantity.normalize():f}", "status": rec.status,
            "refund_amount": None if rec.refund_amount is None else str(rec.refund_amount), "created_at": r.created_at}  # fmt: skip


@router.post("/returns", response={201: ReturnOut}, summary="Request a return of an order line")
def request_return(request: HttpRequest, payload: ReturnIn):
    _require_write(request)
    line = OrderLine.objects.select_related("order__customer").filter(pk=payload.order_line_id).first()
    if line is None or line.order.customer is None:
        raise ValidationFailed("No such order line.", fields={"order_line_id": "unknown"})
    ticket = selectors.access_ticket_for_user(request.auth, payload.ticket_id) if payload.ticket_id else None
    r = do_request_return(actor=actor_of(request), customer=line.order.customer, order_line=line,
                          quantity=payload.quantity, reason=payload.reason, ticket=ticket)  # fmt: skip
    return Status(201, return_out(r))


@router.post(
    "/returns/{int:request_id}/status", response=ReturnOut, summary="Approve, receive, refund or reject"
)
def return_status(request: HttpRequest, request_id: int, payload: ReturnStatusIn):
    user = _person(request)
    r = selectors.access_return_for_user(user, request_id)
    r = do_set_return_status(
        return_request=r, actor=user, status=payload.status, refund_amount=payload.refund_amount
    )
    return return_out(r)


from .flows.api import router as flows_router  # noqa: E402  (ticket flows: /flows, /tickets/{id}/stage)

router.add_router("", flows_router)
