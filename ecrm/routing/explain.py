"""An assignment's explanation in the reader's language, rendered from the facts stored with it:
"Assigned to Li Wei: speaks zh, returns skill 4/5, 1 of 3 chats, VIP customer, 6 min to SLA breach"."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .models import Assignment


def factor_label(name: str) -> str:
    labels = {
        "skill": _("skill match"),
        "load": _("free capacity"),
        "urgency": _("SLA urgency"),
        "value": _("customer value"),
        "affinity": _("affinity (helped before)"),
        "wait": _("time waiting"),
        "priority": _("queue priority"),
    }
    return labels.get(name, name)


def _skill(key: str, level: int) -> str:
    kind, _sep, name = key.partition(":")
    name = name.replace("_", " ")
    if kind == "lang":
        return _("speaks %(lang)s") % {"lang": name}
    if kind == "channel":
        return _("%(channel)s skill %(level)s/5") % {"channel": name, "level": level}
    if kind == "type":
        return _("%(type)s skill %(level)s/5") % {"type": name, "level": level}
    return _("%(name)s skill %(level)s/5") % {"name": name, "level": level}


def _load(load: int, capacity: int, channel: str) -> str:
    args = {"n": load, "cap": capacity}
    if channel == "chat":
        return ngettext("%(n)s of %(cap)s chat", "%(n)s of %(cap)s chats", capacity) % args
    if channel == "email":
        return ngettext("%(n)s of %(cap)s email", "%(n)s of %(cap)s emails", capacity) % args
    if channel == "phone":
        return ngettext("%(n)s of %(cap)s call", "%(n)s of %(cap)s calls", capacity) % args
    return ngettext("%(n)s of %(cap)s ticket", "%(n)s of %(cap)s tickets", capacity) % args


def reasons(details: dict[str, Any]) -> list[str]:
    """The deciding factors as short phrases, in a fixed order."""
    out = [_skill(k, int(v)) for k, v in details.get("skills", [])]
    if details.get("capacity"):
        out.append(_load(int(details.get("load", 0)), int(details["capacity"]), details.get("channel", "")))
    if details.get("affinity"):
        out.append(_("helped this customer before"))
    label = details.get("value_label")
    if label == "vip":
        out.append(_("VIP customer"))
    elif label in ("top", "high"):
        out.append(_("high-value customer"))
    minutes = details.get("sla_minutes")
    if minutes is not None:
        if minutes < 0:
            out.append(_("SLA breached %(n)s min ago") % {"n": -minutes})
        else:
            out.append(_("%(n)s min to SLA breach") % {"n": minutes})
    waited = details.get("waited_minutes") or 0
    if waited >= 1:
        out.append(_("waited %(n)s min") % {"n": waited})
    return out


def sentence(assignment: Assignment) -> str:
    details = assignment.details or {}
    name = details.get("agent_name") or assignment.agent.get_full_name() or assignment.agent.get_username()
    if assignment.policy == "manual":
        return _("Assigned to %(name)s by hand.") % {"name": name}
    parts = reasons(details) or list(assignment.reasons)
    return _("Assigned to %(name)s: %(reasons)s") % {"name": name, "reasons": ", ".join(parts)}


def factor_rows(assignment: Assignment) -> list[dict[str, Any]]:
    """The score table: each weighted factor's contribution, biggest first."""
    rows = [
        {"name": k, "label": factor_label(k), "value": float(v)}
        for k, v in (assignment.factors or {}).items()
    ]
    return sorted(rows, key=lambda r: -r["value"])
