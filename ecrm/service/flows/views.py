"""Console pages of ticket flows: the list, the form-based editor with a read-only diagram, YAML
export and import, and the ticket page's stage buttons. Thin: parse, call a service, render."""

from __future__ import annotations

import yaml
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from ecrm.core.exceptions import NotFound, ValidationFailed
from ecrm.core.models import Role, Team
from ecrm.core.web import console_view, flash_error

from .. import selectors as ticket_selectors
from ..models import TicketFieldDefinition, TicketStatus, TicketType
from . import definition as defn
from . import selectors
from .models import TicketFlow
from .services import do_save_flow, do_start_flow, do_transition
from .yaml import export_machines, import_machines

BLANK_STAGES, BLANK_TRANSITIONS = 2, 3
MAX_UPLOAD = 512 * 1024


@console_view("service.configure")
def flow_list(request: HttpRequest) -> HttpResponse:
    return render(request, "service/flows/list.html", {"flows": selectors.flows_for_user(request.user)})


def _form_definition(post) -> dict:
    """The editor's rows as a flow definition; rows left empty are skipped."""
    stages, transitions = [], []
    i = 0
    while f"stage-{i}-key" in post:
        p = f"stage-{i}-"
        if post.get(p + "key", "").strip() or post.get(p + "label", "").strip():
            stages.append({
                "key": post.get(p + "key", ""), "label": post.get(p + "label", ""), "team": post.get(p + "team", ""),
                "sla_minutes": post.get(p + "sla_minutes", ""), "status": post.get(p + "status", ""),
                "initial": post.get("initial") == str(i), "final": bool(post.get(p + "final")),
            })  # fmt: skip
        i += 1
    i = 0
    while f"tr-{i}-from" in post:
        p = f"tr-{i}-"
        if post.get(p + "from", "").strip() or post.get(p + "to", "").strip():
            transitions.append({
                "from": post.get(p + "from", ""), "to": post.get(p + "to", ""), "label": post.get(p + "label", ""),
                "roles": post.getlist(p + "roles"), "teams": post.getlist(p + "teams"),
                "requires": post.get(p + "requires", ""),
            })  # fmt: skip
        i += 1
    return {
        "name": post.get("name", ""), "ticket_type": post.get("ticket_type", ""),
        "description": post.get("description", ""), "active": bool(post.get("active")),
        "business_hours": bool(post.get("business_hours")), "stages": stages, "transitions": transitions,
    }  # fmt: skip


def _rows(items: list[dict], prefix: str, errors: dict[str, str], blanks: int, blank: dict) -> list[dict]:
    rows = []
    for i, item in enumerate([*items, *[dict(blank) for _n in range(blanks)]]):
        mine = {k.split(".", 2)[2]: v for k, v in errors.items() if k.startswith(f"{prefix}.{i}.")}
        rows.append({"i": i, **item, "errors": mine})
    return rows


def _editor(
    request: HttpRequest, flow: TicketFlow | None, data: dict, errors: dict[str, str], status: int = 200
):
    blank_stage = {"key": "", "label": "", "team": None, "sla_minutes": None, "status": "", "initial": False,
                   "final": False}  # fmt: skip
    blank_tr = {"from": "", "to": "", "label": "", "roles": [], "teams": [], "requires": []}
    transitions = [{**t, "requires": ", ".join(t["requires"]) if isinstance(t["requires"], list) else t["requires"]}
                   for t in data.get("transitions", [])]  # fmt: skip
    context = {
        "flow": flow,
        "data": data,
        "errors": errors,
        "machine_errors": {k: v for k, v in errors.items() if "." not in k},
        "stage_rows": _rows(data.get("stages", []), "stages", errors, BLANK_STAGES, blank_stage),
        "transition_rows": _rows(transitions, "transitions", errors, BLANK_TRANSITIONS, blank_tr),
        "types": TicketType.choices,
        "statuses": TicketStatus.choices,
        "teams": list(Team.objects.order_by("name").values_list("name", flat=True)),
        "roles": [(v, label) for v, label in Role.choices if v != Role.NONE],
        "fields": list(TicketFieldDefinition.objects.values_list("key", flat=True)),
        "graph": selectors.flow_graph(flow) if flow else [],
    }
    return render(request, "service/flows/edit.html", context, status=status)


@console_view("service.configure")
def flow_edit(request: HttpRequest, flow_id: int | None = None) -> HttpResponse:
    flow = selectors.access_flow_for_user(request.user, flow_id, "service.configure") if flow_id else None
    if request.method == "POST":
        data = _form_definition(request.POST)
        try:
            flow = do_save_flow(actor=request.user, data=data, flow=flow)
        except ValidationFailed as exc:
            return _editor(request, flow, defn.normalise(data), exc.fields, status=422)
        messages.success(request, _("Saved."))
        return redirect("service:flow_edit", flow.pk)
    data = defn.as_definition(flow) if flow else defn.normalise({"active": False, "business_hours": True})
    return _editor(request, flow, data, {})


@console_view("service.configure")
def flows_export(request: HttpRequest) -> HttpResponse:
    text = yaml.safe_dump(export_machines(), allow_unicode=True, sort_keys=False)
    response = HttpResponse(text, content_type="application/yaml; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="ticket-flows.yaml"'
    return response


@console_view("service.configure")
def flows_import(request: HttpRequest) -> HttpResponse:
    report, error = None, ""
    if request.method == "POST":
        upload = request.FILES.get("file")
        text = (
            upload.read(MAX_UPLOAD + 1).decode("utf-8", "replace") if upload else request.POST.get("text", "")
        )
        if len(text) > MAX_UPLOAD:
            error = _("The file is too large.")
        else:
            try:
                data = yaml.safe_load(text) or {}
            except yaml.YAMLError as exc:
                error = _("This is not valid YAML: %(error)s") % {"error": str(exc)[:300]}
            else:
                if not isinstance(data, dict):
                    data = {}
                dry_run = bool(request.POST.get("dry_run"))
                report = import_machines(data, dry_run=dry_run, actor=request.user)
                if report["ok"] and not dry_run:
                    messages.success(request, _("Imported."))
    status = 422 if error or (report and not report["ok"]) else 200
    return render(request, "service/flows/import.html", {"report": report, "error": error}, status=status)


@console_view("service.edit")
@require_POST
def ticket_stage(request: HttpRequest, ticket_id: int) -> HttpResponse:
    ticket = ticket_selectors.access_ticket_for_user(request.user, ticket_id)
    fields = {k[3:]: v for k, v in request.POST.items() if k.startswith("cf_") and v.strip()}
    try:
        if request.POST.get("start"):
            do_start_flow(ticket=ticket, actor=request.user)
        else:
            do_transition(ticket=ticket, to_stage=request.POST.get("to", ""), actor=request.user,
                          note=request.POST.get("note", ""), fields=fields or None)  # fmt: skip
        messages.success(request, _("Moved."))
    except ValidationFailed as exc:
        flash_error(request, exc)
    try:
        ticket_selectors.access_ticket_for_user(request.user, ticket.pk)
    except NotFound:
        # handed to a team this agent is not in: the ticket is no longer theirs to see
        messages.info(request, _("%(ticket)s is now with another team.") % {"ticket": ticket.reference})
        return redirect("service:list")
    return redirect("service:detail", ticket.pk)
