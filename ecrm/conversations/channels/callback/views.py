"""Callback pages: the public booking form (/connect/callback/<inbox>/) and the agents' list."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ecrm.core.exceptions import EcrmError, NotFound, ValidationFailed
from ecrm.core.web import console_view, flash_error

from ...models import CallbackStatus
from ..webform import antispam
from ..webform.views import too_many_posts
from . import selectors
from .services import (
    OUTCOMES,
    REMINDER_LEAD,
    callback_config,
    check_callback_request,
    do_record_callback_outcome,
    do_request_callback,
)

MESSAGE_TEMPLATE = "conversations/channels/webform/public_message.html"


def _parse_local(value: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(value.strip()) if value and value.strip() else None
    except ValueError:
        return None


@csrf_exempt  # embedded on the shop: the signed token stands in for CSRF (see webform/antispam.py)
@xframe_options_exempt
def public_request(request: HttpRequest, inbox_id: int) -> HttpResponse:
    try:
        inbox = selectors.public_callback_inbox(inbox_id)
    except NotFound:
        return render(request, MESSAGE_TEMPLATE,
                      {"title": _("Form not found"), "message": _("This form does not exist or is closed.")},
                      status=404)  # fmt: skip
    config = callback_config(inbox)
    tz = zoneinfo.ZoneInfo(config.timezone)
    values: Any = {}
    errors: dict[str, str] = {}
    problem = ""
    status = 200
    if request.method == "POST":
        if antispam.over_rate_limit("callback", inbox.pk, antispam.client_ip(request),
                                    per_hour=config.rate_limit_per_hour):  # fmt: skip
            return too_many_posts(request)
        values = request.POST
        thanks = {"title": _("Callback booked"),
                  "message": _("Thank you! We will call you at the time you chose.")}  # fmt: skip
        if request.POST.get(antispam.HONEYPOT_FIELD):
            antispam.count_spam("callback", inbox.pk)
            return render(request, MESSAGE_TEMPLATE, thanks)
        raw_when = request.POST.get("requested_for", "")
        when = _parse_local(raw_when)
        booking = {
            "inbox": inbox, "phone": request.POST.get("phone", ""), "requested_for": when,
            "name": request.POST.get("name", ""), "email": request.POST.get("email", ""),
            "note": request.POST.get("note", ""),
        }  # fmt: skip
        try:
            try:
                # field errors first (as on web forms), then the token, then the booking
                check_callback_request(**booking)
            except ValidationFailed as exc:
                if raw_when.strip() and when is None:  # typed, but not a date: say so, not "required"
                    exc.fields["requested_for"] = _("Enter a date and time.")
                raise
            antispam.check_token(request.POST.get(antispam.TOKEN_FIELD, ""), "callback", inbox.pk,
                                 min_fill_seconds=config.min_fill_seconds)  # fmt: skip
            callback = do_request_callback(**booking, source="form")
        except antispam.TokenProblem as exc:
            if exc.too_fast:
                antispam.count_spam("callback", inbox.pk)
            problem, status = str(exc), 400
        except ValidationFailed as exc:
            problem, errors, status = exc.message, exc.fields, 422
        except EcrmError as exc:
            return render(
                request, MESSAGE_TEMPLATE, {"title": inbox.name, "message": exc.message}, status=exc.status
            )
        else:
            local = callback.requested_for.astimezone(tz)
            thanks["message"] = _("Thank you! We will call %(phone)s on %(when)s.") % {
                "phone": callback.phone, "when": local.strftime("%Y-%m-%d %H:%M")}  # fmt: skip
            return render(request, MESSAGE_TEMPLATE, thanks)
    now_local = timezone.now().astimezone(tz)
    earliest = now_local + dt.timedelta(minutes=config.min_notice_minutes)
    latest = now_local + dt.timedelta(days=config.max_days_ahead)
    return render(
        request,
        "conversations/channels/callback/public_form.html",
        {"inbox": inbox, "values": values, "errors": errors, "problem": problem, "tz": tz.key,
         "earliest": earliest.strftime("%Y-%m-%dT%H:%M"), "latest": latest.strftime("%Y-%m-%dT%H:%M"),
         "config": config, "token": antispam.issue_token("callback", inbox.pk),
         "token_field": antispam.TOKEN_FIELD, "honeypot_field": antispam.HONEYPOT_FIELD},
        status=status,
    )  # fmt: skip


@console_view("conversations.view")
def callback_list(request: HttpRequest) -> HttpResponse:
    view = request.GET.get("view", "mine")
    state = request.GET.get("state", "upcoming")
    callbacks = list(selectors.callbacks_for_user(request.user, view=view, state=state)[:200])
    now = timezone.now()
    soon = now + REMINDER_LEAD
    for c in callbacks:
        c.overdue = c.requested_for < now and c.status == CallbackStatus.SCHEDULED
        c.due_soon = not c.overdue and c.requested_for <= soon and c.status == CallbackStatus.SCHEDULED
    return render(
        request,
        "conversations/channels/callback/list.html",
        {"callbacks": callbacks, "view": view, "state": state,
         "outcomes": [(s.value, s.label) for s in OUTCOMES]},
    )  # fmt: skip


@require_POST
@console_view("conversations.reply")
def record_outcome(request: HttpRequest, pk: int) -> HttpResponse:
    callback = selectors.access_callback_for_user(request.user, pk)
    try:
        do_record_callback_outcome(callback=callback, actor=request.user, status=request.POST.get("status", ""),
                                   note=request.POST.get("note", ""))  # fmt: skip
    except ValidationFailed as exc:
        flash_error(request, exc)
    else:
        messages.success(
            request, _("Outcome recorded: %(status)s.") % {"status": callback.get_status_display()}
        )
    if request.POST.get("back") == "conversation":
        return redirect("conversations:detail", pk=callback.conversation_id)
    view = request.POST.get("view") if request.POST.get("view") in selectors.VIEWS else "mine"
    return redirect(f"{reverse('conversations:callbacks')}?{urlencode({'view': view})}")
