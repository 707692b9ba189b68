"""Customer self-service portal pages (mounted at /portal/): sign-in by email link, orders and returns,
tickets and replies, chat and help. Customers are not console users: the signed-in customer lives in
the session under `portal_customer_id`, and every read is scoped to them by the selectors."""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from ecrm.core.exceptions import EcrmError, NotFound, ValidationFailed
from ecrm.knowledge.selectors import search_articles
from ecrm.service.services import do_create_ticket, do_customer_reply, do_request_return

from . import selectors, services
from .selectors import SESSION_KEY


def _client_ip(request: HttpRequest) -> str | None:
    # REMOTE_ADDR only: X-Forwarded-For is client-controlled unless a trusted proxy rewrites it.
    return request.META.get("REMOTE_ADDR") or None


def _error_page(request: HttpRequest, message: str, status: int) -> HttpResponse:
    return render(request, "portal/error.html", {"message": message}, status=status)


def portal_view(view: Callable) -> Callable:
    """Signed-in customers only (others go to the sign-in page); domain errors become readable pages,
    another customer's records a plain 404."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        customer = selectors.portal_customer(request)
        if customer is None:
            return redirect(f"{reverse('portal:login')}?next={request.get_full_path()}")
        request.portal_customer = customer
        try:
            return view(request, customer, *args, **kwargs)
        except NotFound:
            return _error_page(request, _("Not found."), 404)
        except EcrmError as exc:
            return _error_page(request, exc.message, exc.status)

    return wrapper


# --- sign-in ---------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def login(request: HttpRequest) -> HttpResponse:
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    context: dict = {"next": next_url, "email": "", "errors": {}}
    if request.method == "POST":
        context["email"] = request.POST.get("email", "").strip()[:254]
        try:
            services.do_request_login_link(
                email=context["email"],
                ip=_client_ip(request),
                link_base=request.build_absolute_uri(reverse("portal:login")),
            )
        except ValidationFailed as exc:
            context["errors"] = exc.fields
            return render(request, "portal/login.html", context, status=422)
        except services.RateLimited as exc:
            return render(request, "portal/login.html", {**context, "refused": exc.message}, status=429)
        return render(request, "portal/login_sent.html", context)
    return render(request, "portal/login.html", context)


@require_http_methods(["GET", "POST"])
def redeem(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button (mail scanners that follow links must not use up the link); POST signs in."""
    try:
        if request.method == "GET":
            services.check_login_link(token)
            return render(request, "portal/redeem.html", {"next": request.GET.get("next", "")})
        customer = services.do_redeem_login_link(token=token)
    except services.LinkRefused as exc:
        return render(request, "portal/link_refused.html", {"message": exc.message}, status=400)
    # a new session key on sign-in (no session fixation); console sign-in on the same browser is kept
    request.session.cycle_key()
    request.session[SESSION_KEY] = customer.pk
    next_url = request.POST.get("next", "")
    if (
        next_url
        and url_has_allowed_host_and_scheme(next_url, {request.get_host()})
        and next_url.startswith("/portal/")
    ):
        return redirect(next_url)
    return redirect("portal:home")


@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    request.session.pop(SESSION_KEY, None)
    request.session.cycle_key()
    messages.success(request, _("You have signed out."))
    return redirect("portal:login")


# --- pages -----------------------------------------------------------------------------------------


def _base(customer) -> dict:
    return {"customer": customer, "chat": selectors.chat_widget(customer)}


@portal_view
def home(request: HttpRequest, customer) -> HttpResponse:
    return render(
        request,
        "portal/home.html",
        {
            **_base(customer),
            "orders": list(selectors.orders_for_customer(customer)[:5]),
            "tickets": list(selectors.tickets_for_customer(customer)[:5]),
        },
    )


@portal_view
def orders(request: HttpRequest, customer) -> HttpResponse:
    return render(
        request,
        "portal/orders.html",
        {**_base(customer), "orders": list(selectors.orders_for_customer(customer)[:200])},
    )


@portal_view
def order_detail(request: HttpRequest, customer, order_id: int) -> HttpResponse:
    order = selectors.access_order_for_customer(customer, order_id)
    return render(
        request,
        "portal/order_detail.html",
        {
            **_base(customer),
            "order": order,
            "lines": list(order.lines.all()),
            "history": list(order.status_history.all()),
            "returns": selectors.returns_for_order(customer, order),
            "errors": {},
        },
    )


@portal_view
@require_POST
def request_return(request: HttpRequest, customer, order_id: int, line_id: int) -> HttpResponse:
    line = selectors.access_order_line_for_customer(customer, order_id, line_id)
    try:
        return_request = do_request_return(
            actor=None,
            customer=customer,
            order_line=line,
            quantity=request.POST.get("quantity", ""),
            reason=request.POST.get("reason", ""),
        )
    except ValidationFailed as exc:
        order = selectors.access_order_for_customer(customer, order_id)
        return render(
            request,
            "portal/order_detail.html",
            {
                **_base(customer),
                "order": order,
                "lines": list(order.lines.all()),
                "history": list(order.status_history.all()),
                "returns": selectors.returns_for_order(customer, order),
                "errors": exc.fields,
                "error_line": line.pk,
                "posted": request.POST,
            },
            status=422,
        )
    messages.success(
        request,
        _("Your return request has been received (ticket #%(n)s).") % {"n": return_request.ticket.number}
        if return_request.ticket_id
        else _("Your return request has been received."),
    )
    return redirect("portal:order", order_id)


@portal_view
@require_http_methods(["GET", "POST"])
def tickets(request: HttpRequest, customer) -> HttpResponse:
    data, errors = {}, {}
    if request.method == "POST":
        data = request.POST.dict()
        order = None
        if data.get("order"):
            try:
                order = selectors.access_order_for_customer(customer, int(data["order"]))
            except (ValueError, NotFound):
                errors["order"] = _("Choose one of your orders.")
        if not errors:
            try:
                ticket = do_create_ticket(
                    actor=None,
                    customer=customer,
                    subject=data.get("subject", ""),
                    body=data.get("body", ""),
                    order=order,
                    source="portal",
                )
            except ValidationFailed as exc:
                errors = exc.fields
            else:
                messages.success(request, _("Thank you. We have received your request."))
                return redirect("portal:ticket", ticket.pk)
    return render(
        request,
        "portal/tickets.html",
        {
            **_base(customer),
            "tickets": list(selectors.tickets_for_customer(customer)[:200]),
            "orders": list(selectors.orders_for_customer(customer)[:50]),
            "data": data,
            "errors": errors,
        },
        status=422 if errors else 200,
    )


@portal_view
@require_http_methods(["GET", "POST"])
def ticket_detail(request: HttpRequest, customer, ticket_id: int) -> HttpResponse:
    ticket = selectors.access_ticket_for_customer(customer, ticket_id)
    errors: dict = {}
    body = ""
    if request.method == "POST":
        body = request.POST.get("body", "")
        try:
            do_customer_reply(ticket=ticket, customer=customer, body=body)
        except ValidationFailed as exc:
            errors = exc.fields
        else:
            messages.success(request, _("Your reply has been sent."))
            return redirect("portal:ticket", ticket.pk)
    return render(
        request,
        "portal/ticket_detail.html",
        {
            **_base(customer),
            "ticket": ticket,
            "comments": list(selectors.ticket_comments(ticket)),
            "errors": errors,
            "body": body,
        },
        status=422 if errors else 200,
    )


@portal_view
def help_search(request: HttpRequest, customer) -> HttpResponse:
    q = request.GET.get("q", "").strip()[:200]
    results = search_articles(q, public_only=True, limit=10) if q else []
    return render(request, "portal/help.html", {**_base(customer), "q": q, "results": results})
