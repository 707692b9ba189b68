"""Console pages of workflows: the rule list (order, switches), the form-based editor with a dry
run, the run log, tasks and notifications, YAML download and upload. Thin: parse, call a
selector or service, render."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from ecrm.core import events
from ecrm.core.exceptions import ValidationFailed
from ecrm.core.permissions import has_perm
from ecrm.core.web import console_view

from . import forms, selectors, services, yaml_io
from .actions import ACTIONS
from .fields import SUBJECT_TYPES
from .models import RunStatus, TaskStatus


def _trigger_options() -> list[tuple[str, str]]:
    out = [
        (name, f"{name} — {events.EVENT_NAMES[name][0] or '-'}")
        for name in events.EVENT_NAMES
        if name != "schedule.tick"
    ]
    return [*out, (services.SCHEDULE, _("On a schedule"))]


def _editor_context(state: forms.EditorState, **extra: Any) -> dict[str, Any]:
    for row in state.rows:
        forms.decorate(row)
    choices = forms.action_choices()
    for action in state.actions:
        forms.decorate_action(action, choices)
    extra_fields = [r.field for r in state.rows if r.field]
    options = forms.field_options()
    known = {p for _, items in options for p, _ in items}
    for path in extra_fields:
        if path not in known:
            options = forms.field_options(path)
    return {
        "state": state,
        "data": state.data,
        "trigger_options": _trigger_options(),
        "subject_types": SUBJECT_TYPES,
        "action_types": [(k, v.label) for k, v in ACTIONS.items()],
        "field_options": options,
        "choices": choices,
        "top_rows": state.rows_of(0),
        "groups": [(g, m, state.rows_of(g)) for g, m in sorted(state.groups.items())],
        "next_row": max([r.index for r in state.rows] + [-1]) + 1,
        "next_action": max([a.index for a in state.actions] + [-1]) + 1,
        "next_group": max(list(state.groups) + [0]) + 1,
        **extra,
    }


def _row_context(row: forms.ConditionRow, **extra: Any) -> dict[str, Any]:
    return {"row": forms.decorate(row), "field_options": forms.field_options(row.field), **extra}


@console_view("workflows.view")
def rule_list(request: HttpRequest) -> HttpResponse:
    from . import engine

    rules = list(selectors.rules_for_user(request.user))
    for r in rules:  # counts not yet flushed from this process
        r.action_labels = [
            ACTIONS[a["type"]].label if a.get("type") in ACTIONS else a.get("type") for a in r.actions
        ]
        pending = engine.pending_counts(r.pk)
        r.evaluated_total, r.matched_total = r.evaluated_count + pending[0], r.matched_count + pending[1]
    can_edit = has_perm(request.user, "workflows.configure")
    return render(request, "workflows/rule_list.html", {"rules": rules, "can_edit": can_edit})


def _save(request: HttpRequest, rule=None) -> HttpResponse:
    data, state, where = forms.parse_editor(request.POST)
    try:
        if rule is None:
            rule = services.do_create_rule(actor=request.user, data=data)
        else:
            rule = services.do_update_rule(actor=request.user, rule=rule, data=data)
    except ValidationFailed as exc:
        forms.attach_errors(state, exc.fields, where)
        context = _editor_context(state, rule=rule, error=exc)
        return render(request, "workflows/rule_form.html", context, status=422)
    messages.success(request, _("Rule saved."))
    return redirect("workflows:rules")


@console_view("workflows.configure")
def rule_new(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _save(request)
    state = forms.EditorState(data={"triggers": ["ticket.created"], "is_active": True, "schedule_every": 60})
    state.rows.append(forms.ConditionRow(0, 0))
    state.actions.append(forms.ActionRow(0, "notify_team", {}))
    return render(request, "workflows/rule_form.html", _editor_context(state, rule=None))


@console_view("workflows.view")
def rule_edit(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = selectors.access_rule_for_user(request.user, rule_id)
    if request.method == "POST":
        if not has_perm(request.user, "workflows.configure"):
            from ecrm.core.web import forbidden

            return forbidden(request)
        return _save(request, rule)
    data = {f: getattr(rule, f) for f in services.RULE_FIELDS}
    state = forms.state_from_rule(data)
    return render(request, "workflows/rule_form.html", _editor_context(state, rule=rule))


@console_view("workflows.view")
def condition_row(request: HttpRequest) -> HttpResponse:
    """htmx: one condition row (new, or re-rendered for the chosen field: its operators and values)."""
    params = request.GET
    adding = "add" in params
    index = forms._int(params.get("next_row") if adding else params.get("i"))
    prefix = f"c-{index}-"
    row = forms.ConditionRow(
        index, forms._int(params.get("group") or params.get(prefix + "group")),
        params.get(prefix + "field", ""), params.get(prefix + "op", ""), params.get(prefix + "value", ""),
    )  # fmt: skip
    context = _row_context(row, next_row=index + 1 if adding else None)
    return render(request, "workflows/partials/_condition_row.html", context)


@console_view("workflows.view")
def condition_group(request: HttpRequest) -> HttpResponse:
    """htmx: a new sub-group with one empty row."""
    group = forms._int(request.GET.get("next_group")) or 1
    row = forms.decorate(forms.ConditionRow(forms._int(request.GET.get("next_row")), group))
    context = {
        "group": group, "match": "any", "rows": [row], "field_options": forms.field_options(),
        "next_row": row.index + 1, "next_group": group + 1,
    }  # fmt: skip
    return render(request, "workflows/partials/_condition_group.html", context)


@console_view("workflows.view")
def action_row(request: HttpRequest) -> HttpResponse:
    """htmx: one action row for the chosen type."""
    adding = "add" in request.GET
    index = forms._int(request.GET.get("next_action") if adding else request.GET.get("i"))
    kind = request.GET.get(f"a-{index}-type") or request.GET.get("type") or "notify_team"
    spec = ACTIONS.get(kind)
    params = {p.name: request.GET.get(f"a-{index}-{p.name}", "") for p in (spec.params if spec else ())}
    context = {
        "action": forms.decorate_action(forms.ActionRow(index, kind, params), forms.action_choices()),
        "action_types": [(k, v.label) for k, v in ACTIONS.items()],
        "choices": forms.action_choices(),
        "next_action": index + 1 if adding else None,
    }
    return render(request, "workflows/partials/_action_row.html", context)


@console_view("workflows.view")
@require_POST
def dry_run(request: HttpRequest) -> HttpResponse:
    data, state, where = forms.parse_editor(request.POST)
    rule_id = request.POST.get("rule_id")
    if rule_id:
        data["id"] = forms._int(rule_id)
    try:
        result = services.dry_run(actor=request.user, data=data)
        return render(request, "workflows/partials/_dry_run.html", {"result": result})
    except ValidationFailed as exc:
        return render(request, "workflows/partials/_dry_run.html", {"error": exc}, status=200)


@console_view("workflows.configure")
@require_POST
def rule_move(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = selectors.access_rule_for_user(request.user, rule_id)
    services.do_move_rule(actor=request.user, rule=rule, direction=request.POST.get("direction", "up"))
    return redirect("workflows:rules")


@console_view("workflows.configure")
@require_POST
def rule_active(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = selectors.access_rule_for_user(request.user, rule_id)
    services.do_set_rule_active(actor=request.user, rule=rule, active=request.POST.get("active") == "1")
    return redirect("workflows:rules")


@console_view("workflows.configure")
@require_POST
def rule_delete(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = selectors.access_rule_for_user(request.user, rule_id)
    services.do_delete_rule(actor=request.user, rule=rule)
    messages.success(request, _("Rule deleted."))
    return redirect("workflows:rules")


@console_view("workflows.view")
def run_list(request: HttpRequest) -> HttpResponse:
    g = request.GET
    filters = selectors.RunFilters(
        rule=forms._int(g.get("rule")) or None, status=g.get("status", ""), event=g.get("event", ""),
        subject_type=g.get("subject_type", ""), subject_id=forms._int(g.get("subject_id")) or None,
    )  # fmt: skip
    runs = selectors.runs_for_user(
        request.user, filters, before=forms._int(g.get("before")) or None, limit=50
    )
    query = g.copy()
    query.pop("before", None)
    context = {
        "runs": runs,
        "filters": filters,
        "rules": list(selectors.rules_for_user(request.user).values_list("pk", "name")),
        "statuses": RunStatus.choices,
        "event_names": [n for n in events.EVENT_NAMES],
        "subject_types": SUBJECT_TYPES,
        "next_before": runs[-1].pk if len(runs) == 50 else None,
        "query": query.urlencode(),
    }
    return render(request, "workflows/run_list.html", context)


@console_view("service.view")
def task_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "open")
    mine = request.GET.get("mine") == "1"
    tasks = list(selectors.tasks_for_user(request.user, status=status, mine=mine)[:300])
    return render(
        request, "workflows/task_list.html",
        {"tasks": tasks, "status": status, "mine": mine, "statuses": TaskStatus.choices},
    )  # fmt: skip


@console_view("service.view")
@require_POST
def task_done(request: HttpRequest, task_id: int) -> HttpResponse:
    services.do_complete_task(actor=request.user, task=services.get_task(task_id))
    return redirect("workflows:tasks")


@console_view()
def notification_list(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        services.do_mark_notifications_read(actor=request.user)
        return redirect("workflows:notifications")
    notices = list(selectors.notifications_for_user(request.user)[:200])
    return render(request, "workflows/notification_list.html", {"notices": notices})


@console_view("workflows.view")
def export_yaml(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(yaml_io.export_yaml(), content_type="application/yaml; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="ecrm-workflows.yaml"'
    return response


@console_view("workflows.configure")
@require_POST
def import_yaml(request: HttpRequest) -> HttpResponse:
    upload = request.FILES.get("file")
    dry = request.POST.get("dry_run") == "on"
    report = None
    error = None
    if upload is None:
        error = _("Choose a YAML file.")
    else:
        try:
            report = yaml_io.import_yaml(upload.read(yaml_io.MAX_BYTES + 1), dry_run=dry, actor=request.user)
        except ValidationFailed as exc:
            error = f"{exc.message} {'; '.join(exc.fields.values())}"
    if report is not None and report["ok"] and not dry:
        messages.success(request, _("Imported."))
        return redirect("workflows:rules")
    rules = list(selectors.rules_for_user(request.user))
    return render(
        request, "workflows/rule_list.html",
        {"rules": rules, "can_edit": True, "report": report, "import_error": error},
        status=422 if (error or (report and not report["ok"])) else 200,
    )  # fmt: skip
