"""A flow as plain data (the editor's form, the API and the YAML file all use this shape) and its
validation. Pure checks against the database's teams, roles and ticket fields; no writes.

    {"name": "Complaint", "ticket_type": "complaint", "active": True, "business_hours": True,
     "description": "",
     "stages": [{"key": "investigating", "label": "Investigating", "team": "Service CN",
                 "sla_minutes": 240, "status": "open", "initial": True, "final": False}, ...],
     "transitions": [{"from": "investigating", "to": "warehouse_check", "label": "Warehouse check",
                      "roles": [], "teams": ["Service CN"], "requires": ["note"]}, ...]}
"""

from __future__ import annotations

import re
from collections import deque
from typing import Any

from ecrm.core.models import Role, Team

from ..models import TicketFieldDefinition, TicketStatus, TicketType
from .models import TicketFlow

KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
TRANSITION_ROLES = [r for r in Role.values if r != Role.NONE]
NOTE = "note"


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _names(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        value = value.split(",")
    return [_text(v) for v in value if _text(v)]


def normalise(data: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults and trim text, so exported and re-imported flows compare equal."""
    stages = []
    for s in data.get("stages") or []:
        s = s or {}
        minutes = s.get("sla_minutes")
        if isinstance(minutes, str):
            minutes = minutes.strip() or None
        stages.append({
            "key": _text(s.get("key")).lower(),
            "label": _text(s.get("label")),
            "team": _text(s.get("team")) or None,
            "sla_minutes": minutes,
            "status": _text(s.get("status")),
            "initial": _bool(s.get("initial")),
            "final": _bool(s.get("final")),
        })  # fmt: skip
    transitions = []
    for t in data.get("transitions") or []:
        t = t or {}
        transitions.append({
            "from": _text(t.get("from")).lower(),
            "to": _text(t.get("to")).lower(),
            "label": _text(t.get("label")),
            "roles": _names(t.get("roles")),
            "teams": _names(t.get("teams")),
            "requires": _names(t.get("requires")),
        })  # fmt: skip
    return {
        "name": _text(data.get("name")),
        "ticket_type": _text(data.get("ticket_type")),
        "description": _text(data.get("description")),
        "active": _bool(data.get("active", True)),
        "business_hours": _bool(data.get("business_hours", True)),
        "stages": stages,
        "transitions": transitions,
    }


def validate(
    data: dict[str, Any], *, flow: TicketFlow | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """(the normalised definition, errors by field path). Field paths: "name", "stages.2.team",
    "transitions.0.to", "stages" for whole-machine problems (initial stage, reachability)."""
    d = normalise(data)
    errors: dict[str, str] = {}
    if not d["name"]:
        errors["name"] = "This field is required."
    elif len(d["name"]) > 100:
        errors["name"] = "At most 100 characters."
    else:
        clash = TicketFlow.objects.filter(name=d["name"]).exclude(pk=getattr(flow, "pk", None)).exists()
        if clash:
            errors["name"] = "Another flow has this name."
    if d["ticket_type"] not in TicketType.values:
        errors["ticket_type"] = f"Must be one of {', '.join(TicketType.values)}."
    elif d["active"]:
        other = (
            TicketFlow.objects.filter(ticket_type=d["ticket_type"], is_active=True)
            .exclude(pk=getattr(flow, "pk", None))
            .first()
        )
        if other is not None:
            errors["ticket_type"] = (
                f"The flow “{other.name}” is already active for this ticket type; switch it off first."
            )
    stages, transitions = d["stages"], d["transitions"]
    team_names = {n for s in stages if s["team"] for n in [s["team"]]} | {
        n for t in transitions for n in t["teams"]
    }
    known_teams = set(Team.objects.filter(name__in=team_names).values_list("name", flat=True))
    field_keys = {r for t in transitions for r in t["requires"] if r != NOTE}
    known_fields = set(TicketFieldDefinition.objects.filter(key__in=field_keys).values_list("key", flat=True))

    if not stages:
        errors["stages"] = "A flow needs at least one stage."
    keys: set[str] = set()
    for i, s in enumerate(stages):
        at = f"stages.{i}"
        if not KEY_RE.match(s["key"]):
            errors[f"{at}.key"] = "Use lower-case letters, digits and underscores, starting with a letter."
        elif s["key"] in keys:
            errors[f"{at}.key"] = f"The key “{s['key']}” is used twice."
        keys.add(s["key"])
        if not s["label"]:
            s["label"] = s["key"].replace("_", " ").capitalize()
        if len(s["label"]) > 100:
            errors[f"{at}.label"] = "At most 100 characters."
        if s["team"] and s["team"] not in known_teams:
            errors[f"{at}.team"] = f"No team is called “{s['team']}”."
        if s["sla_minutes"] is not None:
            try:
                s["sla_minutes"] = int(s["sla_minutes"])
                if s["sla_minutes"] < 1:
                    raise ValueError
            except (TypeError, ValueError):
                errors[f"{at}.sla_minutes"] = "A whole number of minutes, at least 1 (or empty: no SLA)."
        if s["status"] and s["status"] not in TicketStatus.values:
            errors[f"{at}.status"] = f"Must be one of {', '.join(TicketStatus.values)}."
    initial = [s for s in stages if s["initial"]]
    if stages and len(initial) != 1:
        errors["stages"] = f"Mark exactly one stage as initial (now {len(initial)})."
    if stages and not any(s["final"] for s in stages):
        errors.setdefault("stages", "Mark at least one stage as final.")

    pairs: set[tuple[str, str]] = set()
    labels = {s["key"]: s["label"] for s in stages}
    for i, t in enumerate(transitions):
        at = f"transitions.{i}"
        for end in ("from", "to"):
            if t[end] not in keys:
                errors[f"{at}.{end}"] = f"No stage has the key “{t[end]}”."
        if t["from"] == t["to"] and t["from"]:
            errors[f"{at}.to"] = "A step must go to another stage."
        if (t["from"], t["to"]) in pairs:
            errors[f"{at}.to"] = "This step is listed twice."
        pairs.add((t["from"], t["to"]))
        if not t["label"]:
            t["label"] = labels.get(t["to"], t["to"])
        if len(t["label"]) > 100:
            errors[f"{at}.label"] = "At most 100 characters."
        bad_roles = [r for r in t["roles"] if r not in TRANSITION_ROLES]
        if bad_roles:
            errors[f"{at}.roles"] = (
                f"Unknown roles {', '.join(bad_roles)}; use {', '.join(TRANSITION_ROLES)}."
            )
        bad_teams = [n for n in t["teams"] if n not in known_teams]
        if bad_teams:
            errors[f"{at}.teams"] = f"No team is called {', '.join(bad_teams)}."
        bad_fields = [r for r in t["requires"] if r != NOTE and r not in known_fields]
        if bad_fields:
            errors[f"{at}.requires"] = (
                f"Not a ticket field: {', '.join(bad_fields)} (use “note” or a custom ticket field's key)."
            )

    if len(initial) == 1 and "stages" not in errors and not any(k.startswith("transitions.") for k in errors):
        reached = _reachable(initial[0]["key"], transitions)
        unreachable = [s["label"] for s in stages if s["key"] not in reached]
        if not any(s["final"] and s["key"] in reached for s in stages):
            errors["stages"] = "No final stage can be reached from the initial stage."
        elif unreachable:
            errors["stages"] = (
                f"These stages cannot be reached from the initial stage: {', '.join(unreachable)}."
            )
    return d, errors


def _reachable(start: str, transitions: list[dict[str, Any]]) -> set[str]:
    nxt: dict[str, list[str]] = {}
    for t in transitions:
        nxt.setdefault(t["from"], []).append(t["to"])
    seen, todo = {start}, deque([start])
    while todo:
        for key in nxt.get(todo.popleft(), []):
            if key not in seen:
                seen.add(key)
                todo.append(key)
    return seen


def as_definition(flow: TicketFlow) -> dict[str, Any]:
    """The flow as plain data (the exact shape `validate` accepts)."""
    stages = list(flow.stages.select_related("team").order_by("position", "id"))
    transitions = list(
        flow.transitions.select_related("from_stage", "to_stage")
        .prefetch_related("teams")
        .order_by("position", "id")
    )
    return {
        "name": flow.name,
        "ticket_type": flow.ticket_type,
        "description": flow.description,
        "active": flow.is_active,
        "business_hours": flow.business_hours,
        "stages": [
            {
                "key": s.key,
                "label": s.label,
                "team": s.team.name if s.team else None,
                "sla_minutes": s.sla_minutes,
                "status": s.status,
                "initial": s.is_initial,
                "final": s.is_final,
            }  # fmt: skip
            for s in stages
        ],
        "transitions": [
            {
                "from": t.from_stage.key,
                "to": t.to_stage.key,
                "label": t.label,
                "roles": list(t.roles),
                "teams": sorted(team.name for team in t.teams.all()),
                "requires": list(t.required_fields),
            }  # fmt: skip
            for t in transitions
        ],
    }
