"""REST API of workflows (mounted at /api/v1/workflows): rules (CRUD, order, switch, dry run), the
run log, YAML export/import, tasks and notifications. Read keys read; write keys and admins
(workflows.configure) change rules. Invalid rules are 422 with field paths
(`conditions.all.0.value`, `actions.1.team`)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Router
from ninja.responses import Status

from ecrm.core.api_auth import actor_of
from ecrm.core.exceptions import PermissionDenied
from ecrm.core.models import ApiKey, User
from ecrm.core.permissions import check_perm

from . import selectors, services, yaml_io
from .models import Task
from .schemas import (
    ActiveIn,
    DryRunIn,
    DryRunOut,
    ImportIn,
    NotificationOut,
    OrderIn,
    RuleIn,
    RuleOut,
    RunPageOut,
    TaskOut,
)

router = Router(tags=["workflows"])


def _require_configure(request: HttpRequest) -> None:
    principal = request.auth
    if isinstance(principal, ApiKey):
        if not principal.allows_write():
            raise PermissionDenied("This API key is read-only.", code="read_only_key")
        return
    check_perm(principal, "workflows.configure")


def _person(request: HttpRequest) -> User:
    if not isinstance(request.auth, User):
        raise PermissionDenied("Only a signed-in console user has notifications.", code="person_required")
    return request.auth


@router.get("/rules", response=list[RuleOut], summary="Rules in the order they run")
def list_rules(request: HttpRequest):
    return list(selectors.rules_for_user(request.auth))


@router.post("/rules", response={201: RuleOut}, summary="Create a rule (appended at the end)")
def create_rule(request: HttpRequest, payload: RuleIn):
    _require_configure(request)
    rule = services.do_create_rule(actor=actor_of(request), data=payload.model_dump())
    return Status(201, rule)


@router.get("/rules/{int:rule_id}", response=RuleOut, summary="One rule")
def get_rule(request: HttpRequest, rule_id: int):
    return selectors.access_rule_for_user(request.auth, rule_id)


@router.put("/rules/{int:rule_id}", response=RuleOut, summary="Replace a rule's definition")
def update_rule(request: HttpRequest, rule_id: int, payload: RuleIn):
    _require_configure(request)
    rule = selectors.access_rule_for_user(request.auth, rule_id)
    return services.do_update_rule(actor=actor_of(request), rule=rule, data=payload.model_dump())


@router.delete(
    "/rules/{int:rule_id}", response={204: None}, summary="Delete a rule (its runs stay in the log)"
)
def delete_rule(request: HttpRequest, rule_id: int):
    _require_configure(request)
    services.do_delete_rule(
        actor=actor_of(request), rule=selectors.access_rule_for_user(request.auth, rule_id)
    )
    return Status(204, None)


@router.post("/rules/{int:rule_id}/active", response=RuleOut, summary="Switch a rule on or off")
def set_active(request: HttpRequest, rule_id: int, payload: ActiveIn):
    _require_configure(request)
    rule = selectors.access_rule_for_user(request.auth, rule_id)
    return services.do_set_rule_active(actor=actor_of(request), rule=rule, active=payload.active)


@router.post("/rules/order", response=list[RuleOut], summary="Put rules in this order")
def reorder(request: HttpRequest, payload: OrderIn):
    _require_configure(request)
    return services.do_reorder_rules(actor=actor_of(request), rule_ids=payload.rule_ids)


@router.post("/dry-run", response=DryRunOut, summary="Which recent records an (unsaved) rule would match")
def dry_run(request: HttpRequest, payload: DryRunIn):
    data = payload.model_dump(exclude={"limit"})
    return services.dry_run(actor=actor_of(request), data=data, limit=payload.limit)


@router.get("/runs", response=RunPageOut, summary="The run log, newest first")
def list_runs(request: HttpRequest, rule: int | None = None, status: str = "", event: str = "",
              subject_type: str = "", subject_id: int | None = None, before: int | None = None,
              limit: int = 50):  # fmt: skip
    filters = selectors.RunFilters(rule=rule, status=status, event=event, subject_type=subject_type,
                                   subject_id=subject_id)  # fmt: skip
    runs = selectors.runs_for_user(request.auth, filters, before=before, limit=limit)
    return {"items": runs, "next_before": runs[-1].pk if len(runs) == max(1, min(limit, 200)) else None}


@router.get("/export", summary="Rules (and ticket flows) as YAML", response={200: None})
def export(request: HttpRequest):
    selectors.rules_for_user(request.auth)  # permission check
    return HttpResponse(yaml_io.export_yaml(), content_type="application/yaml; charset=utf-8")


@router.post("/import", summary="Import rules (and ticket flows) from YAML; nothing is saved unless all are valid",
             response={200: dict, 422: dict})  # fmt: skip
def import_rules(request: HttpRequest, payload: ImportIn):
    _require_configure(request)
    report = yaml_io.import_yaml(payload.yaml, dry_run=payload.dry_run, actor=actor_of(request))
    if not report["ok"]:
        return Status(422, {"code": "validation_failed", "message": "Nothing was imported.", **report})
    return report


def _task_out(task: Task) -> dict:
    return {
        "id": task.pk, "title": task.title, "description": task.description, "due_at": task.due_at,
        "team": task.team.name if task.team_id else None,
        "assignee": task.assignee.username if task.assignee_id else None,
        "subject_type": task.subject_type, "subject_id": task.subject_id, "url": task.url,
        "status": task.status, "created_at": task.created_at,
    }  # fmt: skip


@router.get("/tasks", response=list[TaskOut], summary="Tasks created by rules")
def list_tasks(request: HttpRequest, status: str = "open", mine: bool = False):
    return [_task_out(t) for t in selectors.tasks_for_user(request.auth, status=status, mine=mine)[:500]]


@router.post("/tasks/{int:task_id}/done", response=TaskOut, summary="Mark a task done")
def complete_task(request: HttpRequest, task_id: int):
    user = _person(request)
    task = services.get_task(task_id)
    return _task_out(services.do_complete_task(actor=user, task=task))


@router.get("/notifications", response=list[NotificationOut], summary="The signed-in user's notifications")
def list_notifications(request: HttpRequest, unread: bool = False):
    user = _person(request)
    return [
        {
            "id": n.pk,
            "message": n.message,
            "team": n.team.name if n.team_id else None,
            "subject_type": n.subject_type,
            "subject_id": n.subject_id,
            "url": n.url,
            "created_at": n.created_at,
            "read_at": n.read_at,
        }  # fmt: skip
        for n in selectors.notifications_for_user(user, unread=unread)[:200]
    ]


@router.post("/notifications/read", response=dict, summary="Mark all (or some) notifications read")
def read_notifications(request: HttpRequest, ids: list[int] | None = None):
    user = _person(request)
    return {"marked": services.do_mark_notifications_read(actor=user, ids=ids)}
