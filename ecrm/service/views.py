"""Console pages of the service desk (thin: parse, call a selector or service, render) and the one
public page, the survey form behind a signed link."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from ecrm.commerce.models import OrderLine, ReturnStatus
from ecrm.core.exceptions import EcrmError, NotFound, ValidationFailed
from ecrm.core.models import Team, User
from ecrm.core.permissions import has_perm
from ecrm.core.web import console_view, flash_error

from . import reports, selectors
from .csv import csv_response
from .models import (
    BusinessCalendar,
    CalendarDayKind,
    CustomerTier,
    NpsCampaign,
    Priority,
    SlaPolicy,
    SurveyKind,
    TicketFieldDefinition,
    TicketStatus,
    TicketType,
)
from .panels import render_ticket_panels
from .services import (
    do_add_comment,
    do_answer_survey,
    do_create_ticket,
    do_link_conversation,
    do_merge_tickets,
    do_request_return,
    do_send_nps,
    do_set_return_status,
    do_set_watching,
    do_update_ticket,
)
from .services import settings as sla_settings


def _int(value) -> int | None:
    try:
        return int(value) or None
    except (TypeError, ValueError):
        return None


def _choices_context() -> dict:
    return {
        "statuses": TicketStatus.choices,
        "priorities": Priority.choices,
        "types": TicketType.choices,
        "teams": list(Team.objects.order_by("name")),
    }


@console_view("service.view")
def ticket_list(request: HttpRequest) -> HttpResponse:
    filters = selectors.TicketFilters.from_params(request.GET)
    rows, next_after = selectors.ticket_page(request.user, filters, after=_int(request.GET.get("after")))
    params = request.GET.copy()
    params.pop("after", None)
    context = {
        "tickets": rows,
        "next_after": next_after,
        "filters": filters,
        "base_query": params.urlencode(),
        "views": [
            ("mine", _("Mine")),
            ("unassigned", _("Unassigned")),
            ("teams", _("My teams")),
            ("all", _("All")),
        ],
        **_choices_context(),
    }
    template = "service/partials/_ticket_rows.html" if request.htmx else "service/ticket_list.html"
    return render(request, template, context)


@console_view("service.view")
def ticket_export(request: HttpRequest) -> HttpResponse:
    filters = selectors.TicketFilters.from_params(request.GET)
    qs = (
        selectors.filter_tickets(request.user, filters)
        .select_related("customer", "team", "assignee")
        .order_by("-id")
    )
    header = ["number", "subject", "type", "priority", "status", "team", "assignee", "customer_id", "customer",
              "created_at", "first_response_due", "resolution_due", "solved_at"]  # fmt: skip
    rows = (
        [t.reference, t.subject, t.type, t.priority, t.status, t.team.name if t.team else "",
         t.assignee.username if t.assignee else "", t.customer_id, str(t.customer), t.created_at.isoformat(),
         t.first_response_due.isoformat() if t.first_response_due else "",
         t.resolution_due.isoformat() if t.resolution_due else "", t.solved_at.isoformat() if t.solved_at else ""]
        for t in qs.iterator(chunk_size=2000)
    )  # fmt: skip
    return csv_response("tickets.csv", header, rows)


def _customer_from(request: HttpRequest):
    from ecrm.customers.selectors import access_customer_for_user

    customer_id = _int(request.POST.get("customer"))
    if not customer_id:
        raise ValidationFailed(_("Choose a customer."), fields={"customer": _("required")})
    return access_customer_for_user(request.user, customer_id)


def _team_user(request: HttpRequest) -> tuple[Team | None, User | None]:
    team_id, assignee_id = _int(request.POST.get("team")), _int(request.POST.get("assignee"))
    team = Team.objects.filter(pk=team_id).first() if team_id else None
    assignee = User.objects.filter(pk=assignee_id, is_active=True).first() if assignee_id else None
    if team_id and team is None:
        raise ValidationFailed(_("No such team."), fields={"team": _("unknown")})
    if assignee_id and assignee is None:
        raise ValidationFailed(_("No such user."), fields={"assignee": _("unknown")})
    return team, assignee


def _order_for(request: HttpRequest, customer):
    from ecrm.commerce.models import Order

    ref = (request.POST.get("order") or "").strip()
    if not ref:
        return None
    order = Order.objects.filter(external_id=ref, customer=customer).first()
    if order is None:
        raise ValidationFailed(_("This customer has no order with that number."), fields={"order": ref})
    return order


@console_view("service.edit")
def ticket_new(request: HttpRequest) -> HttpResponse:
    context = {**_choices_context(), "form": request.POST or {"customer": request.GET.get("customer", "")}}
    if request.method == "POST":
        try:
            customer = _customer_from(request)
            team, assignee = _team_user(request)
            ticket = do_create_ticket(
                actor=request.user,
                customer=customer,
                subject=request.POST.get("subject", ""),
                body=request.POST.get("body", ""),
                type=request.POST.get("type", TicketType.QUESTION),
                priority=request.POST.get("priority", Priority.NORMAL),
                order=_order_for(request, customer),
                team=team,
                assignee=assignee,
                tags=[t for t in request.POST.get("tags", "").split(",") if t.strip()],
            )
        except EcrmError as exc:
            context["error"] = exc
            return render(request, "service/ticket_new.html", context, status=exc.status)
        messages.success(request, _("Ticket %(ref)s created.") % {"ref": ticket.reference})
        return redirect("service:detail", ticket.pk)
    return render(request, "service/ticket_new.html", context)


@console_view("service.edit")
@require_POST
def ticket_from_conversation(request: HttpRequest, conversation_id: int) -> HttpResponse:
    from ecrm.conversations.selectors import access_conversation_for_user

    conversation = access_conversation_for_user(request.user, conversation_id)
    try:
        ticket = do_create_ticket(
            actor=request.user,
            customer=conversation.customer,
            subject=request.POST.get("subject") or conversation.subject,
            body=request.POST.get("body", ""),
            type=request.POST.get("type", TicketType.QUESTION),
            priority=request.POST.get("priority", Priority.NORMAL),
            conversation=conversation,
            source="conversation",
        )
    except ValidationFailed as exc:
        flash_error(request, exc)
        return redirect("conversations:detail", conversation.pk)
    messages.success(request, _("Ticket %(ref)s created.") % {"ref": ticket.reference})
    return redirect("service:detail", ticket.pk)


@console_view("service.edit")
@require_POST
def link_conversation(request: HttpRequest, conversation_id: int) -> HttpResponse:
    """From the conversation panel: attach this conversation to an existing ticket (T-1042)."""
    from ecrm.conversations.selectors import access_conversation_for_user

    conversation = access_conversation_for_user(request.user, conversation_id)
    ref = (request.POST.get("ticket") or "").strip().upper().removeprefix("T-")
    ticket = (
        selectors.tickets_for_user(request.user).filter(number=int(ref)).first() if ref.isdigit() else None
    )
    try:
        if ticket is None:
            raise ValidationFailed(_("No such ticket."), fields={"ticket": ref or _("required")})
        do_link_conversation(ticket=ticket, conversation=conversation, actor=request.user)
    except ValidationFailed as exc:
        flash_error(request, exc)
        return redirect("conversations:detail", conversation.pk)
    messages.success(request, _("Linked to %(ref)s.") % {"ref": ticket.reference})
    return redirect("conversations:detail", conversation.pk)


@console_view("service.view")
@require_POST
def ticket_watch(request: HttpRequest, ticket_id: int) -> HttpResponse:
    ticket = selectors.access_ticket_for_user(request.user, ticket_id)
    do_set_watching(ticket=ticket, actor=request.user, watching=request.POST.get("watch") == "1")
    return redirect("service:detail", ticket.pk)


@console_view("service.view")
def ticket_detail(request: HttpRequest, ticket_id: int) -> HttpResponse:
    ticket = selectors.access_ticket_for_user(request.user, ticket_id)
    from ecrm.conversations.selectors import team_agents

    agents = (
        team_agents(ticket.team_id)
        if ticket.team_id
        else list(User.objects.filter(is_active=True, role__in=["agent", "manager"]).order_by("username"))
    )
    detail = selectors.ticket_detail(ticket, request.user)
    context = {
        "ticket": ticket,
        **detail,
        **_choices_context(),
        "agents": agents,
        "can_edit": has_perm(request.user, "service.edit"),
        "is_watching": any(w.pk == request.user.pk for w in detail["watchers"]),
        "can_refund": has_perm(request.user, "service.configure"),
        "return_statuses": ReturnStatus.choices,
        "field_definitions": list(TicketFieldDefinition.objects.all()),
        "panels": render_ticket_panels(request, ticket),
    }
    return render(request, "service/ticket_detail.html", context)


@console_view("service.edit")
@require_POST
def ticket_update(request: HttpRequest, ticket_id: int) -> HttpResponse:
    ticket = selectors.access_ticket_for_user(request.user, ticket_id)
    post = request.POST
    changes: dict = {k: post[k] for k in ("subject", "type", "priority", "status") if post.get(k)}
    try:
        if "team" in post or "assignee" in post:
            team, assignee = _team_user(request)
            if "team" in post:
                changes["team"] = team
            if "assignee" in post:
                changes["assignee"] = assignee
        if "order" in post:
            changes["order"] = _order_for(request, ticket.customer)
        if "tags" in post:
            changes["tags"] = [t for t in post["tags"].split(",") if t.strip()]
        fields = {k[3:]: v for k, v in post.items() if k.startswith("cf_")}
        if fields:
            changes["custom_fields"] = fields
        do_update_ticket(ticket=ticket, actor=request.user, changes=changes)
        messages.success(request, _("Saved."))
    except ValidationFailed as exc:
        flash_error(request, exc)
    return redirect("service:detail", ticket.pk)


@console_view("service.edit")
@require_POST
def ticket_comment(request: HttpRequest, ticket_id: int) -> HttpResponse:
    ticket = selectors.access_ticket_for_user(request.user, ticket_id)
    try:
        do_add_comment(
            ticket=ticket, actor=request.user, body=request.POST.get("body", ""),
            public=request.POST.get("visibility") != "internal",
        )  # fmt: skip
    except ValidationFailed as exc:
        flash_error(request, exc)
    return redirect("service:detail", ticket.pk)


@console_view("service.edit")
@require_POST
def ticket_merge(request: HttpRequest, ticket_id: int) -> HttpResponse:
    source = selectors.access_ticket_for_user(request.user, ticket_id)
    ref = (request.POST.get("target") or "").strip().upper().removeprefix("T-")
    try:
        if not ref.isdigit():
            raise ValidationFailed(_("Give the number of the ticket to merge into, like T-1042."),
                                   fields={"target": _("required")})  # fmt: skip
        target = selectors.tickets_for_user(request.user).filter(number=int(ref)).first()
        if target is None:
            raise ValidationFailed(_("No such ticket."), fields={"target": ref})
        do_merge_tickets(source=source, target=target, actor=request.user)
    except ValidationFailed as exc:
        flash_error(request, exc)
        return redirect("service:detail", source.pk)
    messages.success(request, _("Merged into %(ref)s.") % {"ref": target.reference})
    return redirect("service:detail", target.pk)


@console_view("service.edit")
@require_POST
def ticket_return(request: HttpRequest, ticket_id: int) -> HttpResponse:
    ticket = selectors.access_ticket_for_user(request.user, ticket_id)
    line = OrderLine.objects.select_related("order").filter(pk=_int(request.POST.get("order_line"))).first()
    try:
        if line is None:
            raise ValidationFailed(_("Choose an order line."), fields={"order_line": _("required")})
        do_request_return(
            actor=request.user, customer=ticket.customer, order_line=line,
            quantity=request.POST.get("quantity", ""), reason=request.POST.get("reason", ""), ticket=ticket,
        )  # fmt: skip
        messages.success(request, _("Return requested."))
    except (ValidationFailed, NotFound) as exc:
        flash_error(request, exc)
    return redirect("service:detail", ticket.pk)


@console_view("service.view")
def return_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    qs = selectors.returns_for_user(request.user)
    if status in ReturnStatus.values:
        qs = qs.filter(return_record__status=status)
    return render(
        request, "service/return_list.html",
        {"returns": list(qs[:200]), "status": status, "return_statuses": ReturnStatus.choices,
         "can_refund": has_perm(request.user, "service.configure")},
    )  # fmt: skip


@console_view("service.edit")
@require_POST
def return_status(request: HttpRequest, request_id: int) -> HttpResponse:
    return_request = selectors.access_return_for_user(request.user, request_id)
    try:
        do_set_return_status(
            return_request=return_request, actor=request.user, status=request.POST.get("status", ""),
            refund_amount=request.POST.get("refund_amount") or None,
        )  # fmt: skip
        messages.success(request, _("Return updated."))
    except ValidationFailed as exc:
        flash_error(request, exc)
    nxt = request.POST.get("next", "")
    if return_request.ticket_id and nxt == "ticket":
        return redirect("service:detail", return_request.ticket_id)
    return redirect("service:returns")


@console_view("service.configure")
def sla_settings_page(request: HttpRequest) -> HttpResponse:
    error = None
    if request.method == "POST":
        try:
            sla_settings.handle_form(actor=request.user, data=request.POST)
            messages.success(request, _("Saved."))
            return redirect("service:sla")
        except ValidationFailed as exc:
            error = exc
    context = {
        "policies": list(SlaPolicy.objects.all()),
        "calendars": list(BusinessCalendar.objects.prefetch_related("teams", "days")),
        "priorities": Priority.choices,
        "tiers": CustomerTier.choices,
        "day_kinds": CalendarDayKind.choices,
        "teams": list(Team.objects.order_by("name")),
        "fields": list(TicketFieldDefinition.objects.all()),
        "error": error,
        "form": request.POST,
    }
    return render(request, "service/sla_settings.html", context, status=422 if error else 200)


@console_view("service.reports")
def report_page(request: HttpRequest) -> HttpResponse:
    params = reports.ReportParams.from_params(request.GET)
    rows = reports.attainment(request.user, params)
    if request.GET.get("format") == "csv":
        return csv_response(f"sla-{params.group}.csv", reports.CSV_HEADER, reports.csv_rows(rows))
    return render(
        request, "service/report.html",
        {"rows": rows, "params": params, "groups": reports.GROUPS, "query": request.GET.urlencode()},
    )  # fmt: skip


@console_view("surveys.send")
def nps_page(request: HttpRequest) -> HttpResponse:
    error = None
    if request.method == "POST":
        try:
            campaign = do_send_nps(
                actor=request.user, name=request.POST.get("name", ""), tag=request.POST.get("tag", ""),
                ids_text=request.POST.get("ids", ""),
            )  # fmt: skip
            messages.success(request, _("Sent to %(n)s customers.") % {"n": campaign.recipients})
            return redirect("service:nps")
        except ValidationFailed as exc:
            error = exc
    campaigns = list(NpsCampaign.objects.all()[:50])
    summary = reports.nps_summary([c.pk for c in campaigns])
    for c in campaigns:
        c.summary = summary.get(c.pk, {})
    return render(
        request, "service/nps.html", {"campaigns": campaigns, "error": error, "form": request.POST},
        status=422 if error else 200,
    )  # fmt: skip


def survey(request: HttpRequest, token: str) -> HttpResponse:
    """Public (no login): the one-page survey behind a signed link."""
    from .services.surveys import response_for_token

    try:
        response = response_for_token(token)
    except NotFound as exc:
        return render(request, "service/survey.html", {"invalid": exc.message}, status=404)
    context = {
        "response": response,
        "scores": range(1 if response.kind == SurveyKind.CSAT else 0, response.max_score + 1),
    }
    if request.method == "POST":
        try:
            response = do_answer_survey(
                response=response, score=request.POST.get("score"), comment=request.POST.get("comment", "")
            )
            context.update(response=response, thanks=True)
        except ValidationFailed as exc:
            context["error"] = exc
            return render(request, "service/survey.html", context, status=422)
    return render(request, "service/survey.html", context)
