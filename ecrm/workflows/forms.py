"""The rule editor's form encoding, both ways: no JSON typing for the person editing.

Conditions are a top-level group (`match` = all|any) of rows and sub-groups of rows:
    match=all
    c-3-group=0  c-3-field=ticket.priority  c-3-op=eq  c-3-value=high     (a row of the top group)
    g-1-match=any                                                          (sub-group 1)
    c-4-group=1  c-4-field=customer.tags    c-4-op=contains c-4-value=vip  (a row of sub-group 1)
Actions are rows too: a-0-type=notify_team a-0-team=Finance a-0-message=...

Deeper nesting (possible through the API and YAML) is kept as it is and shown read-only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from dataclasses import field as _field
from typing import Any

from django.http import QueryDict
from django.utils.translation import gettext_lazy as _

from .actions import ACTIONS, settable_fields
from .conditions import NO_VALUE_OPS
from .fields import OPS_BY_TYPE, catalogue, resolve_field

ROW = re.compile(r"^c-(\d+)-field$")
ACTION_ROW = re.compile(r"^a-(\d+)-type$")
EVENT_FIELDS = (
    "event.changes.status.new", "event.changes.status.old", "event.changes.stage.new", "event.changes.stage.old",
    "event.changes.churn_band.new", "event.changes.segment.new", "event.data.target", "event.data.machine",
)  # fmt: skip


@dataclass
class ConditionRow:
    index: int
    group: int
    field: str = ""
    op: str = ""
    value: str = ""
    errors: list[str] = _field(default_factory=list)


@dataclass
class ActionRow:
    index: int
    type: str
    params: dict[str, Any]
    errors: dict[str, str] = _field(default_factory=dict)


@dataclass
class EditorState:
    data: dict[str, Any]
    match: str = "all"
    groups: dict[int, str] = _field(default_factory=dict)  # sub-group -> all|any
    rows: list[ConditionRow] = _field(default_factory=list)
    actions: list[ActionRow] = _field(default_factory=list)
    raw_conditions: str = ""  # JSON of a tree too deep for the form (kept unchanged)
    general_errors: dict[str, str] = _field(default_factory=dict)

    def rows_of(self, group: int) -> list[ConditionRow]:
        return [r for r in self.rows if r.group == group]


def _value_text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def state_from_rule(data: dict[str, Any]) -> EditorState:
    """The editor's rows for a rule definition (as stored or as the API gives it)."""
    state = EditorState(data=dict(data))
    tree = data.get("conditions") or {}
    key = "any" if "any" in tree else "all"
    state.match = key
    items = tree.get(key, []) if tree else []
    index = 0
    too_deep = False
    for item in items:
        if "field" in item:
            state.rows.append(
                ConditionRow(index, 0, item["field"], item["op"], _value_text(item.get("value")))
            )
            index += 1
            continue
        sub = "any" if "any" in item else "all"
        group = len(state.groups) + 1
        state.groups[group] = sub
        for leaf in item.get(sub, []):
            if "field" not in leaf:
                too_deep = True
                continue
            state.rows.append(
                ConditionRow(index, group, leaf["field"], leaf["op"], _value_text(leaf.get("value")))
            )
            index += 1
    if too_deep:
        state.rows, state.groups = [], {}
        state.raw_conditions = json.dumps(tree, ensure_ascii=False, indent=1)
    for i, action in enumerate(data.get("actions") or []):
        params = {k: v for k, v in action.items() if k != "type"}
        state.actions.append(ActionRow(i, action.get("type", ""), params))
    return state


def parse_editor(post: QueryDict) -> tuple[dict[str, Any], EditorState, dict[str, tuple[str, int, str]]]:
    """(rule data for the service, the editor state to re-render, where each error path belongs)."""
    data: dict[str, Any] = {
        "name": post.get("name", ""),
        "description": post.get("description", ""),
        "triggers": post.getlist("triggers"),
        "schedule_subject": post.get("schedule_subject", ""),
        "schedule_every": post.get("schedule_every") or 60,
        "is_active": post.get("is_active") == "on",
        "stop_processing": post.get("stop_processing") == "on",
    }
    state = EditorState(data=data, match="any" if post.get("match") == "any" else "all")
    where: dict[str, tuple[str, int, str]] = {}
    if post.get("raw_conditions"):
        state.raw_conditions = post["raw_conditions"]
        try:
            data["conditions"] = json.loads(state.raw_conditions)
        except ValueError:
            data["conditions"] = {"invalid": True}
    else:
        indexes = sorted(int(m.group(1)) for k in post for m in [ROW.match(k)] if m)
        for i in indexes:
            row = ConditionRow(
                i, _int(post.get(f"c-{i}-group")), post.get(f"c-{i}-field", "").strip(),
                post.get(f"c-{i}-op", "").strip(), post.get(f"c-{i}-value", ""),
            )  # fmt: skip
            if row.field:
                state.rows.append(row)
        for key in post:
            m = re.match(r"^g-(\d+)-match$", key)
            if m:
                state.groups[int(m.group(1))] = "any" if post[key] == "any" else "all"
        top: list[Any] = []
        for row in state.rows_of(0):
            where[f"conditions.{state.match}.{len(top)}"] = ("c", row.index, "")
            top.append(_leaf(row))
        for group, match in sorted(state.groups.items()):
            leaves = []
            position = len(top)
            for row in state.rows_of(group):
                where[f"conditions.{state.match}.{position}.{match}.{len(leaves)}"] = ("c", row.index, "")
                leaves.append(_leaf(row))
            if leaves:
                top.append({match: leaves})
        data["conditions"] = {state.match: top} if top else {}
    actions = []
    indexes = sorted(int(m.group(1)) for k in post for m in [ACTION_ROW.match(k)] if m)
    for i in indexes:
        kind = post.get(f"a-{i}-type", "")
        if not kind:
            continue
        spec = ACTIONS.get(kind)
        params = {p.name: post.get(f"a-{i}-{p.name}", "") for p in (spec.params if spec else ())}
        where[f"actions.{len(actions)}"] = ("a", i, "")
        state.actions.append(ActionRow(i, kind, params))
        actions.append({"type": kind, **params})
    data["actions"] = actions
    return data, state, where


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _leaf(row: ConditionRow) -> dict[str, Any]:
    leaf: dict[str, Any] = {"field": row.field, "op": row.op}
    if row.op not in NO_VALUE_OPS:
        leaf["value"] = (
            [v.strip() for v in row.value.split(",") if v.strip()]
            if row.op in ("in", "not_in")
            else row.value
        )
    return leaf


def attach_errors(state: EditorState, fields: dict[str, str], where: dict[str, tuple[str, int, str]]) -> None:
    """Put each field-level error next to the row it is about."""
    rows = {r.index: r for r in state.rows}
    actions = {a.index: a for a in state.actions}
    for path, message in fields.items():
        owner = None
        for prefix in sorted(where, key=len, reverse=True):
            if path == prefix or path.startswith(prefix + "."):
                owner = (where[prefix], path[len(prefix) + 1 :])
                break
        if owner is None:
            state.general_errors[path] = message
            continue
        (kind, index, _), rest = owner
        if kind == "c" and index in rows:
            rows[index].errors.append(f"{rest or 'condition'}: {message}")
        elif kind == "a" and index in actions:
            actions[index].errors[rest or "type"] = message
        else:
            state.general_errors[path] = message


# --- choices for the selects ---------------------------------------------------------------------


def field_options(current: str = "") -> list[tuple[str, list[tuple[str, str]]]]:
    """[(namespace, [(path, label)])] for the field select."""
    from ecrm.customers.models import CustomAttributeDefinition
    from ecrm.service.models import TicketFieldDefinition

    groups: dict[str, list[tuple[str, str]]] = {}
    for path, f in catalogue().items():
        groups.setdefault(path.split(".", 1)[0], []).append((path, str(f.label)))
    for d in TicketFieldDefinition.objects.order_by("key"):
        groups["ticket"].append((f"ticket.custom.{d.key}", d.label))
    for d in CustomAttributeDefinition.objects.order_by("key"):
        groups["customer"].append((f"customer.attributes.{d.key}", d.label))
    for path in EVENT_FIELDS:
        groups["event"].append((path, path.split(".", 1)[1]))
    known = {p for items in groups.values() for p, _ in items}
    if current and current not in known:
        groups.setdefault(current.split(".", 1)[0], []).append((current, current))
    return list(groups.items())


def ops_for(path: str) -> tuple[str, ...]:
    f = resolve_field(path) if path else None
    return OPS_BY_TYPE[f.type] if f else OPS_BY_TYPE["any"]


def value_choices(path: str) -> list[str]:
    f = resolve_field(path) if path else None
    if f is None:
        return []
    if f.type == "bool":
        return ["true", "false"]
    if f.choices:
        return list(f.choices)
    if f.type == "ref":
        from ecrm.core.models import Team, User

        if f.ref == "team":
            return list(Team.objects.order_by("name").values_list("name", flat=True))
        return list(
            User.objects.filter(is_active=True).order_by("username").values_list("username", flat=True)
        )
    return []


def action_choices() -> dict[str, list[str]]:
    from ecrm.core.models import Team, User

    teams = list(Team.objects.order_by("name").values_list("name", flat=True))
    users = list(User.objects.filter(is_active=True).order_by("username").values_list("username", flat=True))
    try:
        from ecrm.webhooks.models import Endpoint

        endpoints = list(Endpoint.objects.order_by("name").values_list("name", flat=True).distinct())
    except ImportError:
        endpoints = []
    return {"team": teams, "user": users, "endpoint": endpoints, "field": settable_fields()}


OP_LABELS = {
    "eq": _("is"), "ne": _("is not"), "in": _("is one of"), "not_in": _("is none of"),
    "is_set": _("is set"), "is_empty": _("is empty"), "changed": _("changed"),
    "changed_to": _("changed to"), "changed_from": _("changed from"), "contains": _("contains"),
    "not_contains": _("does not contain"), "matches": _("matches (regex)"), "gt": _("greater than"),
    "gte": _("at least"), "lt": _("less than"), "lte": _("at most"), "within_last": _("within the last"),
    "older_than": _("longer ago than"),
}  # fmt: skip


def decorate(row: ConditionRow) -> ConditionRow:
    """Give a row what its template needs: its operators (labelled) and value choices."""
    row.ops = [(op, OP_LABELS.get(op, op)) for op in ops_for(row.field)]  # type: ignore[attr-defined]
    row.value_choices = value_choices(row.field)  # type: ignore[attr-defined]
    row.no_value = row.op in NO_VALUE_OPS  # type: ignore[attr-defined]
    row.multi = row.op in ("in", "not_in")  # type: ignore[attr-defined]
    return row


def decorate_action(action: ActionRow, choices: dict[str, list[str]]) -> ActionRow:
    """Give an action row its inputs: one per parameter of its type, with options for selects."""
    spec = ACTIONS.get(action.type)
    inputs = []
    for p in spec.params if spec else ():
        options: list[tuple[str, Any]] | None = None
        if p.kind == "choice":
            options = [(v, label) for v, label in p.choices]
        elif p.kind in ("team", "user", "endpoint", "field"):
            options = [("", "—")] + [(v, v) for v in choices.get(p.kind, [])]
            if p.kind == "user" and p.name == "assignee":
                options.insert(1, ("subject_assignee", _("the record's assignee")))
        value = action.params.get(p.name, "")
        if options is not None and value and value not in [o[0] for o in options]:
            options.append((value, value))
        inputs.append({
            "name": p.name, "label": p.label, "kind": p.kind, "required": p.required, "value": "" if value is None else value,
            "error": action.errors.get(p.name, ""), "options": options,
        })  # fmt: skip
    action.inputs = inputs  # type: ignore[attr-defined]
    return action
