"""Ticket flows as data for version control: `export_machines()` gives every flow as a plain dict
(dump it as YAML), `import_machines(data)` validates every flow first and saves them only when all
are valid (one transaction). The workflows app calls both for its combined YAML export."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from ecrm.core.exceptions import ValidationFailed

from .definition import as_definition
from .models import TicketFlow
from .services import save_flow

FORMAT = "ecrm.ticket_flows/1"


def export_machines() -> dict[str, Any]:
    """{"format": ..., "ticket_flows": [definition, ...]} ordered by name (see definition.py)."""
    flows = TicketFlow.objects.order_by("name")
    return {"format": FORMAT, "ticket_flows": [as_definition(f) for f in flows]}


def import_machines(data: dict[str, Any], *, dry_run: bool = False, actor: Any = None) -> dict[str, Any]:
    """Create or update flows by name. Returns {"ok": bool, "dry_run": bool, "machines": [{"name",
    "action": created|updated|unchanged|invalid, "errors": {field path: message}}]}. Nothing is saved
    unless every flow is valid (and not with dry_run). Flows that exist but are not in `data` are left
    alone. Inactive flows are imported before active ones, so swapping which flow serves a ticket
    type works in one file."""
    report: dict[str, Any] = {"ok": True, "dry_run": dry_run, "machines": []}
    items = data.get("ticket_flows") if isinstance(data, dict) else None
    if not isinstance(items, list):
        report["ok"] = False
        report["machines"].append(
            {
                "name": "",
                "action": "invalid",
                "errors": {"ticket_flows": "Expected a list under “ticket_flows”."},
            }
        )
        return report
    names = [str((m or {}).get("name", "")).strip() for m in items if isinstance(m, dict)]
    duplicates = {n for n in names if n and names.count(n) > 1}
    ordered = sorted((m for m in items if isinstance(m, dict)), key=lambda m: bool(m.get("active", True)))
    try:
        with transaction.atomic():
            for item in ordered:
                name = str(item.get("name", "")).strip()
                entry: dict[str, Any] = {"name": name, "action": "", "errors": {}}
                report["machines"].append(entry)
                if name in duplicates:
                    entry.update(action="invalid", errors={"name": "This name appears twice in the file."})
                    continue
                flow = TicketFlow.objects.filter(name=name).first() if name else None
                try:
                    result = save_flow(actor=actor, data=item, flow=flow, dry_run=False)
                    entry["action"] = result.action
                except ValidationFailed as exc:
                    entry.update(action="invalid", errors=exc.fields or {"": exc.message})
            report["ok"] = all(m["action"] != "invalid" for m in report["machines"]) and len(ordered) == len(
                items
            )
            if len(ordered) != len(items):
                report["machines"].append(
                    {
                        "name": "",
                        "action": "invalid",
                        "errors": {"ticket_flows": "Every entry must be a mapping."},
                    }
                )
            if dry_run or not report["ok"]:
                raise _Rollback
    except _Rollback:
        pass
    # keep the file's order in the report
    order = {n: i for i, n in enumerate(names)}
    report["machines"].sort(key=lambda m: order.get(m["name"], len(order)))
    return report


class _Rollback(Exception):
    """Undo a dry run or a file with an invalid flow."""
