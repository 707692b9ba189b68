"""Console pages of the agent inbox: the list (views, filters, search, keyset pages, CSV export,
live row refresh), the conversation page (messages, reply, notes, status, assignment, canned
replies, knowledge-base articles, the customer sidebar), canned reply management and the inbox
settings. Views parse, call one selector or service, and render; htmx/fetch requests get partials."""

from __future__ import annotations

import csv
import logging
import re

from django.contrib import messages as flash
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from ecrm.core.exceptions import EcrmError, NotFound, PermissionDenied, ValidationFailed
from ecrm.core.permissions import check_perm, has_perm
from ecrm.core.web import console_view, flash_error

from . import selectors, services
from .forms import AssignForm, NoteForm, ReplyForm, StatusForm
from .models import ChannelKind, ConversationStatus, Inbox

logger = logging.getLogger(__name__)


def _wants_fragment(request: HttpRequest) -> bool:
    return bool(getattr(request, "htmx", False)) or request.headers.get("X-Requested-With") == "fetch"


# --- The inbox list ------------------------------------------------------------------------------


def _list_context(request: HttpRequest) -> dict:
    filters = selectors.inbox_filters_from_params(request.GET)
    error = None
    try:
        page = selectors.inbox_page_for_user(request.user, filters, after=request.GET.get("after") or None)
    except ValidationFailed as exc:
        page, error = selectors.InboxPage(conversations=[], next_cursor=None), exc
    params = request.GET.copy()
    params.pop("after", None)
    return {
        "page": page,
        "filters": filters,
        "error": error,
        "base_query": params.urlencode(),
        "is_first_page": not request.GET.get("after"),
        "views": [
            ("all", _("All") if has_perm(request.user, "conversations.view_all") else _("All I can see")),
            ("mine", _("Mine")),
            ("unassigned", _("Unassigned")),
            ("teams", _("My teams")),
        ],
        "statuses": [*ConversationStatus.choices, ("any", _("Any status"))],
        "channels": ChannelKind.choices,
    }


@console_view("conversations.view")
def inbox(request: HttpRequest) -> HttpResponse:
    context = _list_context(request)
    if _wants_fragment(request):
        return render(request, "conversations/partials/_list.html", context)
    context["counts"] = selectors.inbox_counts(request.user)
    return render(request, "conversations/inbox.html", context)


@console_view("conversations.view")
def inbox_row(request: HttpRequest, pk: int) -> HttpResponse:
    """One row, re-rendered after a live update; empty when it no longer matches the filters."""
    conv = selectors.conversation_row_for_user(request.user, pk)
    filters = selectors.inbox_filters_from_params(request.GET)
    try:
        matches = selectors.inbox_queryset(request.user, filters).filter(pk=conv.pk).exists()
    except ValidationFailed:
        matches = False
    if not matches:
        return HttpResponse("")
    return render(request, "conversations/partials/_row.html", {"c": conv})


CSV_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value) -> str:
    text = "" if value is None else str(value)
    # A cell starting with a formula character would run in a spreadsheet: make it text.
    return "'" + text if text.startswith(CSV_DANGEROUS) else text


@console_view("conversations.view")
def export_csv(request: HttpRequest) -> HttpResponse:
    filters = selectors.inbox_filters_from_params(request.GET)
    rows = selectors.inbox_export_rows(request.user, filters)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="conversations.csv"'
    response.write("\ufeff")  # Excel reads UTF-8 (Chinese names) only with a BOM
    writer = csv.writer(response)
    writer.writerow(["id", "subject", "customer", "email", "channel", "inbox", "team", "status", "assignee",
                     "last_message_at", "unread"])  # fmt: skip
    for c in rows:
        writer.writerow([_csv_cell(v) for v in (
            c.pk, c.subject, c.customer.display_name, c.customer.email, c.channel, c.inbox.name,
            c.team.name if c.team else "", c.status, c.assignee.username if c.assignee else "",
            c.last_message_at.isoformat() if c.last_message_at else "", c.unread,
        )])  # fmt: skip
    return response


# --- The conversation page -----------------------------------------------------------------------

# Customer HTML is shown only inside `<iframe sandbox srcdoc>` (no allow-scripts, no
# allow-same-origin: no script runs and the frame cannot reach the console). The CSP inside the
# document blocks every remote load until the agent asks for images; then https/http images only.
FRAME_CSP = (
    "default-src 'none'; img-src data: cid:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
)
FRAME_CSP_IMAGES = (
    "default-src 'none'; img-src data: cid: https: http:; style-src 'unsafe-inline'; base-uri 'none'; "
    "form-action 'none'"
)
_REMOTE_IMG = re.compile(r"<img\b[^>]*\bsrc\s*=\s*[\"']?\s*(?:https?:)?//", re.IGNORECASE)


def _srcdoc(body_html: str, csp: str) -> str:
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        '<meta name="referrer" content="no-referrer">'
        "<style>body{font:14px/1.5 system-ui,sans-serif;margin:8px;word-wrap:break-word}"
        "img{max-width:100%}</style></head><body>"
        f"{body_html}</body></html>"
    )


def prepare_messages(messages) -> list:
    """Add the sandboxed-frame documents the message template shows for HTML bodies."""
    out = list(messages)
    for m in out:
        if m.body_html:
            m.srcdoc = _srcdoc(m.body_html, FRAME_CSP)
            m.srcdoc_images = _srcdoc(m.body_html, FRAME_CSP_IMAGES)
            m.has_remote_images = bool(_REMOTE_IMG.search(m.body_html))
    return out


def _attachment_url_name() -> str | None:
    try:
        reverse("conversations:attachment", args=[1])
    except NoReverseMatch:
        return None
    return "conversations:attachment"


def _sidebar(request: HttpRequest, conversation) -> dict:
    from ecrm.customers.selectors import customer_identities, profile_panels

    from .panels import conversation_panels

    customer = conversation.customer
    orders = []
    if has_perm(request.user, "commerce.view"):
        from ecrm.commerce.selectors import recent_orders

        orders = recent_orders(customer.pk, limit=5)
    panels = []
    for panel in conversation_panels(conversation, request.user):
        context = {**panel.get("context", {}), "conversation": conversation, "panel": panel}
        try:
            html = render_to_string(panel["template"], context, request=request)
        except TemplateDoesNotExist:
            # one app's missing panel template must not take the agent's conversation page down
            logger.exception("conversation panel template %s is missing", panel.get("template"))
            continue
        panels.append({"title": panel.get("title", ""), "html": html})
    profile = []
    for panel in profile_panels(customer, request.user):
        if not panel.get("template"):
            continue
        try:
            profile.append(
                render_to_string(panel["template"], {"customer": customer, "panel": panel}, request=request)
            )
        except TemplateDoesNotExist:
            logger.exception("profile panel template %s is missing", panel.get("template"))
    return {
        "identities": customer_identities(customer),
        "recent_orders": orders,
        "panels": panels,
        "profile_panels": profile,
        "can_view_customer": has_perm(request.user, "customers.view"),
    }


def _detail_context(request: HttpRequest, conversation) -> dict:
    from .canned import canned_replies_for_user

    msgs = prepare_messages(selectors.conversation_messages(conversation))
    return {
        "conversation": conversation,
        "thread": msgs,
        "last_message_id": msgs[-1].pk if msgs else 0,
        "reply_form": ReplyForm(),
        "note_form": NoteForm(),
        "statuses": ConversationStatus.choices,
        "agents": selectors.assignable_agents(conversation),
        "can_reply": has_perm(request.user, "conversations.reply"),
        "can_hand_out": has_perm(request.user, "conversations.view_all"),
        "canned": canned_replies_for_user(request.user)
        if has_perm(request.user, "conversations.reply")
        else [],
        "attachment_url": _attachment_url_name(),
        "neighbours": selectors.neighbours(request.user, conversation),
        "kb_available": _kb() is not None,
        **_sidebar(request, conversation),
    }


@console_view("conversations.view")
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = selectors.access_conversation_for_user(request.user, pk)
    if conversation.unread:
        services.do_mark_read(conversation=conversation, actor=request.user)
        conversation.unread = 0
    return render(request, "conversations/detail.html", _detail_context(request, conversation))


@console_view("conversations.view")
def messages_fragment(request: HttpRequest, pk: int) -> HttpResponse:
    """Messages after `?after=<id>`: the page appends them (or replaces ones it has) on live events."""
    conversation = selectors.access_conversation_for_user(request.user, pk)
    try:
        after = int(request.GET.get("after") or 0)
    except ValueError:
        after = 0
    if conversation.unread:
        services.do_mark_read(conversation=conversation, actor=request.user)
    return render(
        request,
        "conversations/partials/_messages.html",
        {
            "thread": prepare_messages(selectors.messages_after(conversation, after)),
            "conversation": conversation,
            "attachment_url": _attachment_url_name(),
        },  # fmt: skip
    )


def _action_done(request: HttpRequest, pk: int, exc: EcrmError | None = None, ok: str = "") -> HttpResponse:
    if isinstance(exc, PermissionDenied | NotFound):
        raise exc  # a refusal is a 403/404 page (console_view), not a flash message
    if _wants_fragment(request):
        if exc is not None:
            return JsonResponse(
                {"code": exc.code, "message": exc.message, "fields": exc.fields}, status=exc.status
            )
        return JsonResponse({"ok": True, "message": ok})
    if exc is not None:
        flash_error(request, exc)
    elif ok:
        flash.success(request, ok)
    return redirect("conversations:detail", pk)


@require_POST
@console_view("conversations.reply")
def reply(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = selectors.access_conversation_for_user(request.user, pk)
    form = ReplyForm(request.POST)
    if not form.is_valid():
        return _action_done(request, pk, ValidationFailed(_("Write a reply first."), fields=_errors(form)))
    try:
        services.do_send_reply(
            conversation=conversation, actor=request.user, body_text=form.cleaned_data["body"]
        )
    except EcrmError as exc:
        return _action_done(request, pk, exc)
    return _action_done(request, pk, ok=_("Reply sent."))


@require_POST
@console_view("conversations.reply")
def note(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = selectors.access_conversation_for_user(request.user, pk)
    form = NoteForm(request.POST)
    if not form.is_valid():
        return _action_done(request, pk, ValidationFailed(_("Write a note first."), fields=_errors(form)))
    try:
        services.do_add_note(conversation=conversation, actor=request.user, body=form.cleaned_data["body"])
    except EcrmError as exc:
        return _action_done(request, pk, exc)
    return _action_done(request, pk, ok=_("Note added."))


@require_POST
@console_view("conversations.reply")
def set_status(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = selectors.access_conversation_for_user(request.user, pk)
    form = StatusForm(request.POST)
    if not form.is_valid():
        return _action_done(request, pk, ValidationFailed(_("Choose a status."), fields=_errors(form)))
    try:
        services.do_set_status(
            conversation=conversation, actor=request.user, status=form.cleaned_data["status"]
        )
    except EcrmError as exc:
        return _action_done(request, pk, exc)
    return _action_done(request, pk, ok=_("Status changed."))


@require_POST
@console_view("conversations.reply")
def assign(request: HttpRequest, pk: int) -> HttpResponse:
    """Manual assignment (`assignee` id, empty to unassign, `me`), or round-robin in the team."""
    from ecrm.core.models import User

    conversation = selectors.access_conversation_for_user(request.user, pk)
    how = request.POST.get("how", "")
    try:
        if how == "round_robin":
            if conversation.team_id is None:
                raise ValidationFailed(_("Round-robin needs a team."), fields={"assignee": "no team"})
            if conversation.assignee_id is not None:
                services.do_assign(conversation=conversation, actor=request.user, assignee=None)
            if services.auto_assign(conversation.pk) is None:
                raise ValidationFailed(_("Nobody on the team can take it."), fields={"assignee": "no agent"})
        else:
            if how == "me":
                assignee = request.user
            else:
                form = AssignForm(request.POST)
                if not form.is_valid():
                    raise ValidationFailed(_("Choose someone."), fields=_errors(form))
                assignee_id = form.cleaned_data["assignee"]
                assignee = (
                    User.objects.filter(pk=assignee_id, is_active=True).first() if assignee_id else None
                )
                if assignee_id and assignee is None:
                    raise ValidationFailed(_("No such user."), fields={"assignee": "unknown"})
            services.do_assign(conversation=conversation, actor=request.user, assignee=assignee)
    except EcrmError as exc:
        return _action_done(request, pk, exc)
    return _action_done(request, pk, ok=_("Assignment changed."))


def _errors(form) -> dict[str, str]:
    return {name: "; ".join(str(e) for e in errs) for name, errs in form.errors.items()}


# --- Canned replies and knowledge-base articles on the conversation page ---------------------------


@console_view("conversations.reply")
def canned_render(request: HttpRequest, pk: int, reply_id: int) -> HttpResponse:
    """The canned reply filled in for this conversation's customer (inserted into the reply box)."""
    from .canned import access_canned_reply_for_user, render_canned_reply

    conversation = selectors.access_conversation_for_user(request.user, pk)
    canned = access_canned_reply_for_user(request.user, reply_id)
    try:
        text = render_canned_reply(canned, conversation=conversation, agent=request.user)
    except ValidationFailed as exc:
        return JsonResponse({"code": exc.code, "message": exc.message, "fields": exc.fields}, status=422)
    return JsonResponse({"text": text})


def _kb():
    """The knowledge selectors when that app provides them (guarded: it lands separately)."""
    try:
        from ecrm.knowledge import selectors as kb
    except ImportError:
        return None
    if not hasattr(kb, "search_articles"):
        return None
    return kb


def _article_row(article) -> dict:
    url = ""
    slug = getattr(article, "slug", None)
    if slug:
        try:
            url = request_independent_url("knowledge_public:article", slug)
        except NoReverseMatch:
            url = ""
    body = getattr(article, "body_text", None) or getattr(article, "body", "") or ""
    return {"id": article.pk, "title": str(getattr(article, "title", article)), "url": url,
            "excerpt": body[:200], "text": body}  # fmt: skip


def request_independent_url(name: str, *args) -> str:
    return reverse(name, args=list(args))


@console_view("conversations.reply")
def kb_articles(request: HttpRequest, pk: int) -> HttpResponse:
    """Articles for the agent: a search (`?q=`), or suggestions from the latest customer message."""
    conversation = selectors.access_conversation_for_user(request.user, pk)
    kb = _kb()
    q = (request.GET.get("q") or "").strip()[:200]
    articles = []
    if kb is not None:
        if q:
            articles = kb.search_articles(q, limit=8)
        elif hasattr(kb, "suggest_articles_for_text"):
            text = selectors.latest_inbound_text(conversation)
            articles = kb.suggest_articles_for_text(text, limit=5) if text else []
    return render(request, "conversations/partials/_kb.html",
                  {"articles": [_article_row(a) for a in articles], "q": q, "kb_available": kb is not None})  # fmt: skip


# --- Canned reply management ---------------------------------------------------------------------


@console_view("conversations.reply")
def canned_list(request: HttpRequest) -> HttpResponse:
    from .canned import can_manage, canned_replies_for_user

    replies = list(canned_replies_for_user(request.user))
    for r in replies:
        r.can_manage = can_manage(request.user, r.team_id)
    return render(request, "conversations/canned_list.html", {"replies": replies})


@console_view("conversations.reply")
def canned_edit(request: HttpRequest, reply_id: int | None = None) -> HttpResponse:
    from .canned import (
        access_canned_reply_for_user,
        check_can_manage,
        do_save_canned_reply,
        team_choices_for,
    )
    from .forms import CannedReplyForm

    canned = access_canned_reply_for_user(request.user, reply_id) if reply_id else None
    if canned is not None:
        check_can_manage(request.user, canned.team_id)
    choices = [(str(k) if k else "", v) for k, v in team_choices_for(request.user)]
    initial = {"name": canned.name, "shortcut": canned.shortcut, "body": canned.body,
               "team": canned.team_id or ""} if canned else {}  # fmt: skip
    form = CannedReplyForm(request.POST or None, initial=initial, team_choices=choices)
    error = None
    if request.method == "POST" and form.is_valid():
        try:
            do_save_canned_reply(actor=request.user, canned=canned, **form.cleaned_data)
        except ValidationFailed as exc:
            error = exc
            for name, msg in exc.fields.items():
                if name in form.fields:
                    form.add_error(name, msg)
        else:
            flash.success(request, _("Canned reply saved."))
            return redirect("conversations:canned_list")
    return render(request, "conversations/canned_form.html", {"form": form, "canned": canned, "error": error},
                  status=422 if request.method == "POST" else 200)  # fmt: skip


@require_POST
@console_view("conversations.reply")
def canned_delete(request: HttpRequest, reply_id: int) -> HttpResponse:
    from .canned import access_canned_reply_for_user, do_delete_canned_reply

    canned = access_canned_reply_for_user(request.user, reply_id)
    do_delete_canned_reply(actor=request.user, canned=canned)
    flash.success(request, _("Canned reply deleted."))
    return redirect("conversations:canned_list")


# --- Inbox settings (admins) ---------------------------------------------------------------------


@console_view("conversations.configure")
def inbox_settings(request: HttpRequest) -> HttpResponse:
    inboxes = Inbox.objects.select_related("team").order_by("name")
    return render(request, "conversations/inbox_settings.html", {"inboxes": inboxes})


@console_view("conversations.configure")
def inbox_settings_edit(request: HttpRequest, inbox_id: int | None = None) -> HttpResponse:
    import json

    from ecrm.core.models import Team

    from .forms import InboxSettingsForm
    from .inbox_admin import do_update_inbox

    check_perm(request.user, "conversations.configure")
    inbox = Inbox.objects.filter(pk=inbox_id).first() if inbox_id else None
    if inbox_id and inbox is None:
        raise NotFound(_("No such inbox."))
    choices = [("", _("No team"))] + [(str(t.pk), t.name) for t in Team.objects.order_by("name")]
    initial = {}
    if inbox:
        initial = {"name": inbox.name, "kind": inbox.kind, "team": inbox.team_id or "",
                   "auto_assign": inbox.auto_assign, "is_active": inbox.is_active,
                   "config": json.dumps(inbox.config, indent=2, ensure_ascii=False)}  # fmt: skip
    form = InboxSettingsForm(
        request.POST or None, initial=initial or {"is_active": True}, team_choices=choices
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        team = Team.objects.filter(pk=data["team"]).first() if data["team"] else None
        try:
            if inbox is None:
                saved = services.create_inbox(actor=request.user, name=data["name"], kind=data["kind"], team=team,
                                              config=data["config"], auto_assign=data["auto_assign"])  # fmt: skip
            else:
                saved = do_update_inbox(actor=request.user, inbox=inbox, name=data["name"], team=team,
                                        config=data["config"], auto_assign=data["auto_assign"],
                                        is_active=data["is_active"])  # fmt: skip
        except ValidationFailed as exc:
            for name, msg in exc.fields.items():
                form.add_error(name if name in form.fields else ("config" if name.startswith("config") else None),
                               f"{name}: {msg}" if name.startswith("config.") else msg)  # fmt: skip
        else:
            flash.success(request, _("Inbox “%(name)s” saved.") % {"name": saved.name})
            return redirect("conversations:inbox_settings")
    return render(request, "conversations/inbox_settings_form.html", {"form": form, "inbox": inbox},
                  status=422 if request.method == "POST" else 200)  # fmt: skip
