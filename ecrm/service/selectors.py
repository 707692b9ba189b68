"""Reads on tickets, returns and surveys, with the visibility rule in one place: the same as for
conversations — managers and admins see all; agents see tickets on their teams, with no team, or
assigned to them. Integration API keys see all (they act for the shop, not for a person)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet

from ecrm.core.exceptions import NotFound
from ecrm.core.models import ApiKey
from ecrm.core.permissions import check_perm, has_perm

from .models import OPEN_STATUSES, ReturnRequest, SurveyKind, SurveyResponse, Ticket, TicketStatus


def ticket_visibility_q(user: Any) -> Q:
    if isinstance(user, ApiKey):
        return Q()
    from ecrm.conversations.selectors import visibility_q

    return visibility_q(user)


def _check_view(user: Any) -> None:
    if isinstance(user, ApiKey):
        return  # authenticated by the API layer; any scope may read
    check_perm(user, "service.view")


def tickets_for_user(user: Any) -> QuerySet[Ticket]:
    _check_view(user)
    return Ticket.objects.filter(ticket_visibility_q(user))


def access_ticket_for_user(user: Any, ticket_id: int) -> Ticket:
    _check_view(user)
    ticket = (
        Ticket.objects.select_related("customer", "team", "assignee", "order", "sla_policy", "merged_into")
        .filter(pk=ticket_id)
        .filter(ticket_visibility_q(user))
        .first()
    )
    if ticket is None:
        raise NotFound("No such ticket.")  # 404, not 403: do not reveal another team's tickets
    return ticket


def tickets_for_customer(customer: Any) -> QuerySet[Ticket]:
    """A customer's own tickets, newest first (the portal; no staff permission applies)."""
    return (
        Ticket.objects.filter(customer=customer).select_related("merged_into").order_by("-created_at", "-id")
    )


def access_customer_ticket(customer: Any, ticket_id: int) -> Ticket:
    """One of the customer's tickets; someone else's is 'not found'."""
    ticket = tickets_for_customer(customer).filter(pk=ticket_id).first()
    if ticket is None:
        raise NotFound("No such ticket.")
    return ticket


def public_comments(ticket: Ticket):
    """What the customer sees on their ticket: public comments, oldest first."""
    return ticket.comments.filter(is_public=True).select_related("author").order_by("created_at", "id")


@dataclass
class TicketFilters:
    view: str = "teams"  # mine | unassigned | teams | all
    status: str = "open"  # open (not solved/closed) | any | one status
    priority: str = ""
    type: str = ""
    team: int | None = None
    q: str = ""
    tag: str = ""
    customer: int | None = None

    @classmethod
    def from_params(cls, params: Any) -> TicketFilters:
        def _int(value: Any) -> int | None:
            try:
                return int(value) or None
            except (TypeError, ValueError):
                return None

        return cls(
            view=params.get("view") or "teams",
            status=params.get("status") or "open",
            priority=params.get("priority") or "",
            type=params.get("type") or "",
            team=_int(params.get("team")),
            q=(params.get("q") or "").strip()[:100],
            tag=(params.get("tag") or "").strip()[:64],
            customer=_int(params.get("customer")),
        )


def filter_tickets(user: Any, filters: TicketFilters) -> QuerySet[Ticket]:
    """The visible tickets that match the filters (the search, the list pages, the API, the export)."""
    qs = tickets_for_user(user)
    uid = getattr(user, "pk", None) if not isinstance(user, ApiKey) else None
    if filters.view == "mine" and uid:
        qs = qs.filter(assignee_id=uid)
    elif filters.view == "unassigned":
        qs = qs.filter(assignee__isnull=True)
    elif filters.view == "teams" and uid and not has_perm(user, "conversations.view_all"):
        qs = qs.filter(team_id__in=user.teams.values("id"))
    if filters.status == "open":
        qs = qs.filter(status__in=OPEN_STATUSES)
    elif filters.status in TicketStatus.values:
        qs = qs.filter(status=filters.status)
    if filters.priority:
        qs = qs.filter(priority=filters.priority)
    if filters.type:
        qs = qs.filter(type=filters.type)
    if filters.team:
        qs = qs.filter(team_id=filters.team)
    if filters.customer:
        qs = qs.filter(customer_id=filters.customer)
    if filters.tag:
        qs = qs.filter(tags__name=filters.tag.lower())
    if filters.q:
        qs = qs.filter(_search_q(filters.q))
    return qs


def _search_q(q: str) -> Q:
    """T-1042 / 1042 finds the ticket by number; other text searches subjects and customer names."""
    text = q.strip()
    digits = text[2:] if text[:2].upper() == "T-" else text
    if digits.isdigit():
        return Q(number=int(digits))
    return Q(subject__icontains=text) | Q(customer__search_name__startswith=text.lower())


def ticket_page(user: Any, filters: TicketFilters, *, after: int | None = None, limit: int = 50):
    """One keyset page (newest activity first) of the list; `after` is the last row's id."""
    limit = max(1, min(limit, 200))
    qs = (
        filter_tickets(user, filters)
        .select_related("customer", "team", "assignee")
        .order_by("-updated_at", "-id")
    )
    if after:
        last = Ticket.objects.filter(pk=after).values("updated_at").first()
        if last:
            qs = qs.filter(
                Q(updated_at__lt=last["updated_at"]) | Q(updated_at=last["updated_at"], id__lt=after)
            )
    rows = list(qs[: limit + 1])
    next_after = rows[limit - 1].pk if len(rows) > limit else None
    return rows[:limit], next_after


def ticket_detail(ticket: Ticket, user: Any) -> dict[str, Any]:
    """Everything the ticket page shows, in a fixed number of queries."""
    from ecrm.conversations.selectors import visibility_q

    comments = list(ticket.comments.select_related("author", "customer").order_by("created_at", "id"))
    activity = list(ticket.activity.select_related("actor").order_by("-at", "-id")[:100])
    conversations = list(ticket.conversations.filter(visibility_q(user)).select_related("inbox"))
    returns = list(
        ReturnRequest.objects.filter(ticket=ticket)
        .select_related("return_record__order_line", "return_record__order")
        .order_by("-created_at")
    )
    surveys = list(SurveyResponse.objects.filter(ticket=ticket, kind=SurveyKind.CSAT))
    return {
        "comments": comments,
        "activity": activity,
        "conversations": conversations,
        "returns": returns,
        "csat": surveys[0] if surveys else None,
        "tags": list(ticket.tags.values_list("name", flat=True)),
        "watchers": list(ticket.watchers.all()),
        "order_lines": list(ticket.order.lines.all()) if ticket.order_id else [],
    }


def returns_for_user(user: Any) -> QuerySet[ReturnRequest]:
    _check_view(user)
    qs = ReturnRequest.objects.select_related(
        "return_record__order_line", "return_record__order", "customer", "ticket"
    ).order_by("-created_at", "-id")
    if isinstance(user, ApiKey) or has_perm(user, "conversations.view_all"):
        return qs
    return qs.filter(Q(ticket__isnull=True) | Q(ticket__in=Ticket.objects.filter(ticket_visibility_q(user))))


def access_return_for_user(user: Any, request_id: int) -> ReturnRequest:
    found = returns_for_user(user).filter(pk=request_id).first()
    if found is None:
        raise NotFound("No such return.")
    return found


def returns_for_customer(customer: Any) -> QuerySet[ReturnRequest]:
    return ReturnRequest.objects.filter(customer=customer).select_related(
        "return_record__order_line", "return_record__order"
    )


def customer_satisfaction(customer: Any) -> dict[str, Any]:
    """CSAT and NPS answers of one customer (the 360 page)."""
    answers = list(
        SurveyResponse.objects.filter(customer=customer, score__isnull=False)
        .select_related("ticket")
        .order_by("-answered_at")[:20]
    )
    csat = [a.score for a in answers if a.kind == SurveyKind.CSAT]
    nps = [a.score for a in answers if a.kind == SurveyKind.NPS]
    return {
        "answers": answers,
        "csat_avg": round(sum(csat) / len(csat), 2) if csat else None,
        "last_nps": nps[0] if nps else None,
    }


def tag_names_for(ticket_ids: list[int]) -> dict[int, list[str]]:
    """{ticket id: [tag names]} in one query (list pages and the API)."""
    out: dict[int, list[str]] = {}
    for tid, name in Ticket.tags.through.objects.filter(ticket_id__in=ticket_ids).values_list(
        "ticket_id", "tickettag__name"
    ):
        out.setdefault(tid, []).append(name)
    return {k: sorted(v) for k, v in out.items()}
