"""Writes of workflows: rules (validated as a whole, field-level errors), their order and switches,
dry runs, the scheduler, tasks and notifications. Every change to a rule is audited and drops the
engine's compiled-rule cache."""

from __future__ import annotations

import time
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from ecrm.core import events
from ecrm.core.audit import record_audit
from ecrm.core.exceptions import NotFound, ValidationFailed
from ecrm.core.models import ApiKey, User
from ecrm.core.permissions import check_perm

from . import engine
from .actions import validate_action
from .conditions import ConditionError, compile_tree, validate_tree
from .fields import NAMESPACES_BY_SUBJECT, SUBJECT_TYPES, Context
from .models import Notification, Rule, RuleRun, RunStatus, Task, TaskStatus

SCHEDULE = engine.SCHEDULE
MAX_ACTIONS = 20
MAX_SCHEDULED_SUBJECTS = 20_000
DRY_RUN_LIMIT = 200
RULE_FIELDS = (
    "name", "description", "triggers", "conditions", "actions", "schedule_subject", "schedule_every",
    "is_active", "stop_processing",
)  # fmt: skip


def _check(actor: Any, capability: str = "workflows.configure") -> None:
    # an API key is authorised by its scope at the API edge; None = the system (imports from the CLI)
    if isinstance(actor, User):
        check_perm(actor, capability)


def trigger_names() -> list[str]:
    return [n for n in events.EVENT_NAMES if n != "schedule.tick"] + [SCHEDULE]


def subjects_of(triggers: list[str], schedule_subject: str) -> set[str]:
    out = set()
    for t in triggers:
        if t == SCHEDULE:
            out.add(schedule_subject)
        elif t in events.EVENT_NAMES:
            out.add(events.EVENT_NAMES[t][0])
    return out


def clean_rule(data: dict[str, Any], *, rule: Rule | None = None) -> dict[str, Any]:
    """The rule's fields validated and normalised; ValidationFailed with every problem by field path."""
    errors: dict[str, str] = {}
    unknown = set(data) - set(RULE_FIELDS) - {"position"}
    for key in sorted(unknown):
        errors[key] = _("unknown field")
    name = " ".join(str(data.get("name") or "").split())
    if not name:
        errors["name"] = _("This field is required.")
    elif len(name) > 120:
        errors["name"] = _("At most 120 characters.")
    elif Rule.objects.filter(name__iexact=name).exclude(pk=getattr(rule, "pk", None)).exists():
        errors["name"] = _("A rule with this name exists.")
    description = str(data.get("description") or "").strip()[:2000]
    triggers = data.get("triggers")
    if isinstance(triggers, str):
        triggers = [triggers]
    if not isinstance(triggers, list) or not triggers:
        errors["triggers"] = _("Choose at least one trigger.")
        triggers = []
    triggers = list(dict.fromkeys(str(t).strip() for t in triggers))
    known = set(trigger_names())
    for i, t in enumerate(triggers):
        if t not in known:
            errors[f"triggers.{i}"] = _("unknown trigger %(name)r") % {"name": t}
    schedule_subject = str(data.get("schedule_subject") or "").strip()
    try:
        every = int(data.get("schedule_every") or 60)
    except (TypeError, ValueError):
        every, errors["schedule_every"] = 60, _("A number of minutes.")
    if SCHEDULE in triggers:
        if schedule_subject not in SUBJECT_TYPES:
            errors["schedule_subject"] = _("A scheduled rule looks at one of: %(kinds)s.") % {
                "kinds": ", ".join(SUBJECT_TYPES)
            }
        if not 5 <= every <= 10_080:
            errors["schedule_every"] = _("Between 5 minutes and a week (10080).")
    else:
        schedule_subject = ""
    subjects = subjects_of([t for t in triggers if t in known], schedule_subject)
    namespaces = None
    if subjects:
        reach = [set(NAMESPACES_BY_SUBJECT.get(s, ("event",))) for s in subjects]
        namespaces = tuple(sorted(set.intersection(*reach)))
    conditions: dict = {}
    try:
        conditions = validate_tree(data.get("conditions") or {}, namespaces)
    except ConditionError as exc:
        errors.update(exc.errors)
    actions_in = data.get("actions")
    actions: list[dict] = []
    if not isinstance(actions_in, list) or not actions_in:
        errors["actions"] = _("Add at least one action.")
    elif len(actions_in) > MAX_ACTIONS:
        errors["actions"] = _("At most %(n)s actions.") % {"n": MAX_ACTIONS}
    else:
        for i, raw in enumerate(actions_in):
            clean, problems = validate_action(raw, subjects)
            for key, message in problems.items():
                errors[f"actions.{i}.{key}"] = message
            actions.append(clean)
    if errors:
        raise ValidationFailed(_("The rule is not valid."), fields=errors)
    compile_tree(conditions)  # proves it compiles
    return {
        "name": name,
        "description": description,
        "triggers": triggers,
        "conditions": conditions,
        "actions": actions,
        "schedule_subject": schedule_subject,
        "schedule_every": every,
        "is_active": bool(data.get("is_active", True)),
        "stop_processing": bool(data.get("stop_processing", False)),
    }


def _snapshot(rule: Rule) -> dict[str, Any]:
    return {f: getattr(rule, f) for f in (*RULE_FIELDS, "position")}


def do_create_rule(*, actor: User | ApiKey | None, data: dict[str, Any]) -> Rule:
    _check(actor)
    clean = clean_rule(data)
    with transaction.atomic():
        last = Rule.objects.aggregate(m=Max("position"))["m"]
        position = data.get("position")
        rule = Rule(
            **clean,
            position=int(position) if isinstance(position, int) else (0 if last is None else last + 1),
            created_by=actor if isinstance(actor, User) else None,
        )
        rule.save()
        record_audit(actor=actor, action="workflow_rule.create", obj=rule, after=_snapshot(rule))
        transaction.on_commit(engine.invalidate)
    engine.invalidate()
    return rule


def do_update_rule(*, actor: User | ApiKey | None, rule: Rule, data: dict[str, Any]) -> Rule:
    """Replace the rule's definition (a full rule, as the editor and the API send it)."""
    _check(actor)
    merged = {**{f: getattr(rule, f) for f in RULE_FIELDS}, **data}
    clean = clean_rule(merged, rule=rule)
    with transaction.atomic():
        locked = Rule.objects.select_for_update().get(pk=rule.pk)
        before = _snapshot(locked)
        for key, value in clean.items():
            setattr(locked, key, value)
        if isinstance(data.get("position"), int):
            locked.position = data["position"]
        locked.updated_at = timezone.now()
        locked.save()
        record_audit(
            actor=actor, action="workflow_rule.update", obj=locked, before=before, after=_snapshot(locked)
        )
        transaction.on_commit(engine.invalidate)
    engine.invalidate()
    return locked


def do_set_rule_active(*, actor: User | ApiKey | None, rule: Rule, active: bool) -> Rule:
    _check(actor)
    with transaction.atomic():
        Rule.objects.filter(pk=rule.pk).update(is_active=bool(active), updated_at=timezone.now())
        record_audit(actor=actor, action="workflow_rule.active", obj=rule, before={"is_active": rule.is_active},
                     after={"is_active": bool(active)})  # fmt: skip
        transaction.on_commit(engine.invalidate)
    engine.invalidate()
    rule.refresh_from_db()
    return rule


def do_delete_rule(*, actor: User | ApiKey | None, rule: Rule) -> None:
    _check(actor)
    with transaction.atomic():
        record_audit(actor=actor, action="workflow_rule.delete", obj=rule, before=_snapshot(rule))
        rule.delete()
        transaction.on_commit(engine.invalidate)
    engine.invalidate()


def do_reorder_rules(*, actor: User | ApiKey | None, rule_ids: list[int]) -> list[Rule]:
    """Put the rules in this order (positions 0..n-1); rules not listed keep their order after them."""
    _check(actor)
    with transaction.atomic():
        rules = list(Rule.objects.select_for_update().order_by("position", "id"))
        by_id = {r.pk: r for r in rules}
        unknown = [i for i in rule_ids if i not in by_id]
        if unknown:
            raise ValidationFailed("Unknown rules.", fields={"rule_ids": f"no rule {unknown[0]}"})
        ordered = [by_id[i] for i in dict.fromkeys(rule_ids)] + [
            r for r in rules if r.pk not in set(rule_ids)
        ]
        before = {r.pk: r.position for r in rules}
        now = timezone.now()
        for position, r in enumerate(ordered):
            if r.position != position:
                r.position, r.updated_at = position, now
                r.save(update_fields=["position", "updated_at"])
        record_audit(actor=actor, action="workflow_rule.reorder", object_type="workflows.rule", object_id="*",
                     before={"order": sorted(before, key=lambda k: before[k])}, after={"order": [r.pk for r in ordered]})  # fmt: skip
        transaction.on_commit(engine.invalidate)
    engine.invalidate()
    return ordered


def do_move_rule(*, actor: User | ApiKey | None, rule: Rule, direction: str) -> list[Rule]:
    ids = list(Rule.objects.order_by("position", "id").values_list("pk", flat=True))
    i = ids.index(rule.pk)
    j = i - 1 if direction == "up" else i + 1
    if 0 <= j < len(ids):
        ids[i], ids[j] = ids[j], ids[i]
    return do_reorder_rules(actor=actor, rule_ids=ids)


# --- dry run ---------------------------------------------------------------------------------------


def dry_run(
    *, actor: User | ApiKey | None, data: dict[str, Any], limit: int = DRY_RUN_LIMIT
) -> dict[str, Any]:
    """Which of the last `limit` records of each trigger's subject type the (unsaved) rule would
    match now. Nothing is changed. Conditions on what an event changed (changed, event.*) cannot
    be known for past records and count as not met."""
    _check(actor, "workflows.view")
    rule_id = data.get("id")
    rule = Rule.objects.filter(pk=rule_id).first() if rule_id else None
    clean = clean_rule({k: v for k, v in data.items() if k != "id"}, rule=rule)
    test = compile_tree(clean["conditions"])
    limit = max(1, min(int(limit or DRY_RUN_LIMIT), 1000))
    out: dict[str, Any] = {"checked": 0, "matched": 0, "records": [], "limit": limit}
    started = time.perf_counter()
    by_subject: dict[str, str] = {}
    for t in clean["triggers"]:
        subject = clean["schedule_subject"] if t == SCHEDULE else events.EVENT_NAMES[t][0]
        if subject in SUBJECT_TYPES:
            by_subject.setdefault(subject, "schedule.tick" if t == SCHEDULE else t)
    for subject, event_name in by_subject.items():
        for obj in _recent_subjects(subject, limit):
            event = events.Event(
                name=event_name, subject_type=subject, subject_id=obj.pk, data={}, id="dry-run"
            )
            out["checked"] += 1
            if test(Context(event, instance=obj)):
                out["matched"] += 1
                out["records"].append(_describe(subject, obj))
    out["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return out


def _subject_queryset(subject: str):
    from ecrm.commerce.models import Order
    from ecrm.conversations.models import Conversation
    from ecrm.customers.models import Customer
    from ecrm.service.models import Ticket

    return {
        "ticket": Ticket.objects.select_related("team", "assignee", "customer"),
        "conversation": Conversation.objects.select_related("team", "assignee", "customer"),
        "order": Order.objects.select_related("customer"),
        "customer": Customer.objects.exclude(status="merged"),
    }[subject]


def _recent_subjects(subject: str, limit: int):
    return list(_subject_queryset(subject).order_by("-updated_at", "-id")[:limit])


def _describe(subject: str, obj: Any) -> dict[str, Any]:
    from .actions import subject_url

    label = {
        "ticket": lambda o: f"{o.reference} {o.subject}",
        "conversation": lambda o: f"#{o.pk} {o.subject or o.channel}",
        "order": lambda o: f"{o.external_id} ({o.status})",
        "customer": lambda o: str(o),
    }[subject](obj)
    return {
        "subject_type": subject,
        "subject_id": obj.pk,
        "label": label,
        "url": subject_url(subject, obj.pk),
    }


# --- the scheduler -------------------------------------------------------------------------------


def run_due_scheduled_rules(now=None) -> dict[int, int]:
    """Run every active scheduled rule whose interval has passed. Returns {rule id: matches}."""
    now = now or timezone.now()
    done: dict[int, int] = {}
    for rule in Rule.objects.filter(is_active=True).order_by("position", "id"):
        if SCHEDULE not in (rule.triggers or []):
            continue
        if (
            rule.last_scheduled_at
            and (now - rule.last_scheduled_at).total_seconds() < rule.schedule_every * 60 - 30
        ):
            continue
        # claim the slot first, so two schedulers never run the same rule at once
        claimed = Rule.objects.filter(pk=rule.pk, last_scheduled_at=rule.last_scheduled_at).update(
            last_scheduled_at=now
        )
        if claimed:
            done[rule.pk] = run_scheduled_rule(rule.pk)
    return done


def run_scheduled_rule(rule_id: int) -> int:
    """Evaluate one scheduled rule over its subjects (the newest MAX_SCHEDULED_SUBJECTS, closed
    tickets left out) and act on those that match. A subject the rule already acted on is skipped
    until the record changes again, so "pending for 3 days" notifies once, not every hour."""
    compiled = engine.rule_by_id(rule_id)
    if compiled is None or not compiled.schedule_subject:
        return 0
    subject = compiled.schedule_subject
    last_runs = dict(
        RuleRun.objects.filter(rule_id=rule_id, status=RunStatus.DONE, subject_type=subject)
        .values_list("subject_id")
        .annotate(last=Max("at"))
    )
    qs = _subject_queryset(subject)
    if subject == "ticket":
        qs = qs.exclude(status="closed")
    matched = 0
    for obj in qs.order_by("-id")[:MAX_SCHEDULED_SUBJECTS].iterator(chunk_size=1000):
        last = last_runs.get(obj.pk)
        if last is not None and last >= obj.updated_at:
            continue
        event = events.Event(name="schedule.tick", subject_type=subject, subject_id=obj.pk, data={})
        outcomes = engine.process_event(event, rules=[compiled], instance=obj)
        matched += sum(1 for o in outcomes if o.get("status") == RunStatus.DONE)
    return matched


# --- tasks and notifications -------------------------------------------------------------------


def do_complete_task(*, actor: User, task: Task) -> Task:
    """The assignee, a member of the task's team, or a manager marks it done."""
    if not _works_on(actor, task):
        check_perm(actor, "workflows.view")
    with transaction.atomic():
        locked = Task.objects.select_for_update().get(pk=task.pk)
        if locked.status == TaskStatus.DONE:
            return locked
        locked.status, locked.done_at, locked.done_by = TaskStatus.DONE, timezone.now(), actor
        locked.save(update_fields=["status", "done_at", "done_by"])
        record_audit(actor=actor, action="workflow_task.done", obj=locked, before={"status": "open"},
                     after={"status": "done"})  # fmt: skip
    return locked


def _works_on(user: User, task: Task) -> bool:
    if task.assignee_id == user.pk:
        return True
    return task.team_id is not None and user.teams.filter(pk=task.team_id).exists()


def get_task(task_id: int) -> Task:
    task = Task.objects.filter(pk=task_id).first()
    if task is None:
        raise NotFound("No such task.")
    return task


def do_mark_notifications_read(*, actor: User, ids: list[int] | None = None) -> int:
    qs = Notification.objects.filter(user=actor, read_at__isnull=True)
    if ids is not None:
        qs = qs.filter(pk__in=ids)
    return qs.update(read_at=timezone.now())
