"""Web-form pages: the public form the shop embeds (/connect/f/<slug>/) and the console builder."""

from __future__ import annotations

import re
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt

from ecrm.core.exceptions import EcrmError, NotFound, ValidationFailed
from ecrm.core.web import console_view

from ..base import get_adapter
from . import antispam, selectors
from .services import FIELD_TYPE_LABELS, FORM_CAPABILITY, do_save_webform, do_submit_webform

PUBLIC_TEMPLATE = "conversations/channels/webform/public_form.html"


def too_many_posts(request: HttpRequest) -> HttpResponse:
    return render(
        request, "conversations/channels/webform/public_message.html",
        {"title": _("Too many messages"),
         "message": _("You have sent this form many times in the last hour. Please try again later.")},
        status=429,
    )  # fmt: skip


@csrf_exempt  # posted from the shop's pages inside an iframe: the signed token stands in for CSRF
@xframe_options_exempt  # made to be framed by the shop
def public_form(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        form = selectors.public_webform(slug)
    except NotFound:
        return render(
            request, "conversations/channels/webform/public_message.html",
            {"title": _("Form not found"), "message": _("This form does not exist or is closed.")}, status=404,
        )  # fmt: skip
    context: dict[str, Any] = {"form": form, "values": {}, "errors": {}, "problem": ""}
    status = 200
    if request.method == "POST":
        config = get_adapter("webform").config(form.inbox)
        if antispam.over_rate_limit("webform", form.pk, antispam.client_ip(request),
                                    per_hour=config.rate_limit_per_hour):  # fmt: skip
            return too_many_posts(request)
        try:
            result = do_submit_webform(
                form=form,
                data=request.POST,
                token=request.POST.get(antispam.TOKEN_FIELD, ""),
                honeypot=request.POST.get(antispam.HONEYPOT_FIELD, ""),
                page=request.META.get("HTTP_REFERER", ""),
            )
        except antispam.TokenProblem as exc:
            context.update(values=request.POST, problem=str(exc))
            status = 400
        except ValidationFailed as exc:
            context.update(values=request.POST, errors=exc.fields, problem=exc.message)
            status = 422
        except EcrmError as exc:
            return render(request, "conversations/channels/webform/public_message.html",
                          {"title": form.name, "message": exc.message}, status=exc.status)  # fmt: skip
        else:
            del result  # spam and real submissions get the same answer
            return render(
                request, "conversations/channels/webform/public_message.html",
                {"title": form.name, "message": form.success_message or _("Thank you! We will get back to you soon.")},
            )  # fmt: skip
    context["rows"] = [
        {**d, "value": context["values"].get(d["name"], ""), "error": context["errors"].get(d["name"], "")}
        for d in form.fields
    ]
    context["token"] = antispam.issue_token("webform", form.pk)
    context["token_field"], context["honeypot_field"] = antispam.TOKEN_FIELD, antispam.HONEYPOT_FIELD
    return render(request, PUBLIC_TEMPLATE, context, status=status)


# --- console -------------------------------------------------------------------------------------


@console_view(FORM_CAPABILITY)
def form_list(request: HttpRequest) -> HttpResponse:
    forms = list(selectors.webforms_for_user(request.user))
    for f in forms:
        f.spam_blocked = antispam.spam_count("webform", f.pk)
    return render(request, "conversations/channels/webform/list.html", {"forms": forms})


_ROW_RE = re.compile(r"^field-(\d+)-(name|label|type|required|options|delete)$")
BLANK_ROWS = 3


def _posted_rows(post) -> list[dict[str, Any]]:
    """The builder's rows in order; rows left blank or ticked "remove" are dropped."""
    rows: dict[int, dict[str, Any]] = {}
    for key in post:
        m = _ROW_RE.match(key)
        if m:
            rows.setdefault(int(m.group(1)), {})[m.group(2)] = post.get(key, "")
    out = []
    for _index, row in sorted(rows.items()):
        if row.get("delete") or not (row.get("name", "").strip() or row.get("label", "").strip()):
            continue
        options = [o.strip() for o in re.split(r"[\n,]", row.get("options", "")) if o.strip()]
        out.append({
            "name": row.get("name", "").strip(), "label": row.get("label", "").strip(),
            "type": row.get("type", "text"), "required": bool(row.get("required")), "options": options,
        })  # fmt: skip
    return out


@console_view(FORM_CAPABILITY)
def form_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    form = selectors.access_webform_for_user(request.user, pk) if pk else None
    inboxes = list(selectors.webform_inboxes(request.user))
    errors: dict[str, str] = {}
    problem = ""
    if request.method == "POST":
        rows = _posted_rows(request.POST)
        values = {
            "name": request.POST.get("name", ""),
            "slug": request.POST.get("slug", ""),
            "success_message": request.POST.get("success_message", ""),
            "is_active": bool(request.POST.get("is_active")),
            "inbox_id": request.POST.get("inbox", ""),
        }
        inbox = next((i for i in inboxes if str(i.pk) == values["inbox_id"]), None)
        try:
            if inbox is None:
                raise ValidationFailed(_("The form could not be saved."), fields={"inbox": "choose an inbox"})
            saved = do_save_webform(
                actor=request.user, inbox=inbox, form=form, fields=rows,
                **{k: v for k, v in values.items() if k != "inbox_id"},
            )  # fmt: skip
        except ValidationFailed as exc:
            errors, problem = exc.fields, exc.message
        else:
            messages.success(request, _("Form “%(name)s” saved.") % {"name": saved.name})
            return redirect("conversations:webform_edit", pk=saved.pk)
    elif form is not None:
        rows = list(form.fields)
        values = {"name": form.name, "slug": form.slug, "success_message": form.success_message,
                  "is_active": form.is_active, "inbox_id": str(form.inbox_id)}  # fmt: skip
    else:
        rows = [
            {"name": "name", "label": _("Your name"), "type": "text", "required": True, "options": []},
            {"name": "email", "label": _("Email"), "type": "email", "required": True, "options": []},
            {"name": "message", "label": _("Message"), "type": "textarea", "required": True, "options": []},
        ]
        values = {"name": "", "slug": "", "success_message": "", "is_active": True,
                  "inbox_id": str(inboxes[0].pk) if inboxes else ""}  # fmt: skip
    shown = []
    for index, row in enumerate([*rows, *({} for _blank in range(BLANK_ROWS))]):
        row_errors = {k.split(".", 2)[2]: v for k, v in errors.items() if k.startswith(f"fields.{index}.")}
        shown.append({**row, "index": index, "options_text": ", ".join(row.get("options", [])),
                      "errors": row_errors})  # fmt: skip
    form_errors = {k: v for k, v in errors.items() if not k.startswith("fields.")}
    public_url = request.build_absolute_uri(reverse("connect:webform", args=[form.slug])) if form else ""
    return render(
        request,
        "conversations/channels/webform/edit.html",
        {"webform": form, "rows": shown, "values": values, "errors": form_errors, "problem": problem,
         "inboxes": inboxes, "field_types": list(FIELD_TYPE_LABELS.items()), "public_url": public_url,
         "spam_blocked": antispam.spam_count("webform", form.pk) if form else 0},
    )  # fmt: skip
