"""Rules (and the service desk's ticket flows) as YAML, so they can live in version control.

    format: ecrm.workflows/1
    rules:                      # in order: the file's order is the rules' order
      - name: Urgent complaints to finance
        description: ...
        active: true
        triggers: [ticket.created, ticket.updated]
        stop_processing: false
        conditions: {all: [{field: ticket.priority, op: eq, value: urgent}]}
        actions:
          - {type: notify_team, team: Finance, message: "Urgent: {{ ticket.reference }}"}
      - name: Pending too long
        triggers: [schedule]
        schedule: {subject: ticket, every_minutes: 60}
        ...
    ticket_flows: [...]         # ecrm.service.flows.yaml's format, when that app is installed

Import validates everything first and saves nothing unless every rule (and flow) is valid; rules
are matched by name (created or updated), rules not in the file are left alone.
"""

from __future__ import annotations

from typing import Any

import yaml
from django.db import transaction
from django.utils.translation import gettext as _

from ecrm.core.audit import record_audit
from ecrm.core.exceptions import ValidationFailed

from . import engine
from .models import Rule
from .services import RULE_FIELDS, _check, _snapshot, clean_rule

FORMAT = "ecrm.workflows/1"
MAX_BYTES = 2 * 1024 * 1024


def _flows():
    try:
        from ecrm.service.flows import yaml as flows_yaml
    except ImportError:  # the ticket flows are not installed
        return None
    return flows_yaml


def rule_as_dict(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {"name": rule.name}
    if rule.description:
        out["description"] = rule.description
    out["active"] = rule.is_active
    out["triggers"] = list(rule.triggers)
    if rule.schedule_subject:
        out["schedule"] = {"subject": rule.schedule_subject, "every_minutes": rule.schedule_every}
    out["stop_processing"] = rule.stop_processing
    out["conditions"] = rule.conditions or {}
    out["actions"] = rule.actions
    return out


def export_data(*, include_flows: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {
        "format": FORMAT,
        "rules": [rule_as_dict(r) for r in Rule.objects.order_by("position", "id")],
    }
    flows = _flows() if include_flows else None
    if flows is not None:
        data["ticket_flows"] = flows.export_machines()["ticket_flows"]
    return data


def export_yaml(*, include_flows: bool = True) -> str:
    return yaml.safe_dump(
        export_data(include_flows=include_flows), allow_unicode=True, sort_keys=False, width=110
    )


def parse_yaml(text: str | bytes) -> Any:
    if isinstance(text, bytes):
        if len(text) > MAX_BYTES:
            raise ValidationFailed(
                "The file is too large.", fields={"file": f"at most {MAX_BYTES // 1024} KiB"}
            )
        text = text.decode("utf-8", errors="replace")
    if len(text) > MAX_BYTES:
        raise ValidationFailed(
            _("The file is too large."), fields={"file": _("at most %(n)s KiB") % {"n": MAX_BYTES // 1024}}
        )
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationFailed(_("The file is not valid YAML."), fields={"file": str(exc)[:300]}) from exc


def _rule_data(item: dict[str, Any]) -> dict[str, Any]:
    data = {
        "name": item.get("name"),
        "description": item.get("description", ""),
        "triggers": item.get("triggers"),
        "conditions": item.get("conditions") or {},
        "actions": item.get("actions"),
        "is_active": item.get("active", True),
        "stop_processing": item.get("stop_processing", False),
    }
    schedule = item.get("schedule")
    if isinstance(schedule, dict):
        data["schedule_subject"] = schedule.get("subject", "")
        data["schedule_every"] = schedule.get("every_minutes", 60)
    unknown = set(item) - {"name", "description", "active", "triggers", "schedule", "stop_processing",
                           "conditions", "actions"}  # fmt: skip
    for key in sorted(unknown):
        data[key] = item[key]  # clean_rule reports it as unknown
    return data


class _Rollback(Exception):
    pass


def import_data(data: Any, *, dry_run: bool = False, actor: Any = None) -> dict[str, Any]:
    """Validate everything, then (unless dry_run or any error) save. Returns
    {"ok", "dry_run", "rules": [{"name", "action": created|updated|unchanged|invalid, "errors"}],
     "ticket_flows": <the flows' own report> (when the file has flows)}."""
    _check(actor)
    report: dict[str, Any] = {"ok": True, "dry_run": dry_run, "rules": []}
    if not isinstance(data, dict) or data.get("format") not in (FORMAT, None):
        report["ok"] = False
        report["rules"].append(
            {
                "name": "",
                "action": "invalid",
                "errors": {"format": _("expected format: %(format)s") % {"format": FORMAT}},
            }
        )
        return report
    items = data.get("rules", [])
    if not isinstance(items, list):
        report["ok"] = False
        report["rules"].append(
            {"name": "", "action": "invalid", "errors": {"rules": _("expected a list of rules")}}
        )
        return report
    names = [str(i.get("name", "")).strip().lower() for i in items if isinstance(i, dict)]
    try:
        with transaction.atomic():
            for index, item in enumerate(items):
                entry: dict[str, Any] = {"name": "", "action": "", "errors": {}}
                report["rules"].append(entry)
                if not isinstance(item, dict):
                    entry.update(action="invalid", errors={"": _("each rule is a mapping")})
                    continue
                entry["name"] = str(item.get("name", "")).strip()
                if entry["name"] and names.count(entry["name"].lower()) > 1:
                    entry.update(action="invalid", errors={"name": _("This name appears twice in the file.")})
                    continue
                existing = Rule.objects.filter(name__iexact=entry["name"]).first() if entry["name"] else None
                try:
                    clean = clean_rule(_rule_data(item), rule=existing)
                except ValidationFailed as exc:
                    entry.update(action="invalid", errors=exc.fields or {"": exc.message})
                    continue
                # the file's order is the rules' order: positions 0..n-1 (rules not in the file keep theirs)
                entry["action"] = _save(existing, clean, index, actor)
            if isinstance(data.get("ticket_flows"), list):
                flows = _flows()
                if flows is None:
                    report["ok"] = False
                    report["ticket_flows"] = {"ok": False, "error": "ticket flows are not installed here"}
                else:
                    report["ticket_flows"] = flows.import_machines(
                        {"ticket_flows": data["ticket_flows"]}, dry_run=False, actor=actor
                    )
                    report["ok"] = report["ok"] and report["ticket_flows"]["ok"]
            report["ok"] = report["ok"] and all(r["action"] != "invalid" for r in report["rules"])
            if dry_run or not report["ok"]:
                raise _Rollback
    except _Rollback:
        pass
    if "ticket_flows" in report and isinstance(report["ticket_flows"], dict):
        report["ticket_flows"]["dry_run"] = dry_run
    if report["ok"] and not dry_run:
        transaction.on_commit(engine.invalidate)
        engine.invalidate()
    return report


def _save(existing: Rule | None, clean: dict[str, Any], position: int, actor: Any) -> str:
    from django.utils import timezone

    from ecrm.core.models import User

    if existing is None:
        rule = Rule.objects.create(
            **clean, position=position, created_by=actor if isinstance(actor, User) else None
        )
        record_audit(actor=actor, action="workflow_rule.import", obj=rule, after=_snapshot(rule))
        return "created"
    before = _snapshot(existing)
    if all(getattr(existing, f) == clean[f] for f in RULE_FIELDS) and existing.position == position:
        return "unchanged"
    for key, value in clean.items():
        setattr(existing, key, value)
    existing.position = position
    existing.updated_at = timezone.now()
    existing.save()
    record_audit(
        actor=actor, action="workflow_rule.import", obj=existing, before=before, after=_snapshot(existing)
    )
    return "updated"


def import_yaml(text: str | bytes, *, dry_run: bool = False, actor: Any = None) -> dict[str, Any]:
    return import_data(parse_yaml(text), dry_run=dry_run, actor=actor)
