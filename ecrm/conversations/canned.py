"""Canned replies: saved answers with variables, filled in for a conversation's customer.

The text is a Django template rendered by a separate engine with autoescape off (the result is plain
text for the reply box, escaped again wherever it is shown) and a restricted context: plain dicts of
whitelisted values, no model objects, so a template cannot reach methods or other data. Only
`{{ variable }}` with a few filters is allowed; tags (`{% ... %}`) and unknown variables are refused
with a clear error when the reply is saved, and again when it is used.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.template import Context, Engine, TemplateSyntaxError
from django.template.base import TextNode, VariableNode

from ecrm.core.audit import record_audit
from ecrm.core.exceptions import NotFound, PermissionDenied, ValidationFailed
from ecrm.core.models import Team, User
from ecrm.core.permissions import check_perm, has_perm

from .models import CannedReply, Conversation

VARIABLES = {
    "customer.name": "the customer's name",
    "customer.first_name": "first name",
    "customer.last_name": "last name",
    "customer.email": "primary email",
    "customer.city": "city",
    "last_order.number": "the latest order's number",
    "last_order.status": "its status",
    "last_order.total": "its total with currency",
    "last_order.date": "the day it was placed",
    "agent.name": "your name",
    "agent.first_name": "your first name",
    "conversation.subject": "the conversation's subject",
}
FILTERS = {"default", "upper", "lower", "title", "capfirst"}

_ENGINE = Engine(autoescape=False, string_if_invalid="")


def _compile(body: str):
    """Parse and check the template: only text and whitelisted variables with allowed filters."""
    try:
        template = _ENGINE.from_string(body)
    except TemplateSyntaxError as exc:
        raise ValidationFailed(f"The text has a template error: {exc}", fields={"body": str(exc)}) from exc
    problems = []
    for node in template.nodelist:
        if isinstance(node, TextNode):
            continue
        if not isinstance(node, VariableNode):
            problems.append("only {{ variables }} are allowed, not {% tags %}")
            continue
        expr = node.filter_expression
        name = getattr(expr.var, "var", None)
        if not isinstance(name, str) or name not in VARIABLES:
            problems.append(f"unknown variable {{{{ {expr.token} }}}}")
        for func, _args in expr.filters:
            if func.__name__ not in FILTERS:
                problems.append(f"filter “{func.__name__}” is not allowed")
    if problems:
        known = ", ".join(VARIABLES)
        raise ValidationFailed(
            "; ".join(dict.fromkeys(problems)) + f". Known variables: {known}.",
            fields={"body": "; ".join(dict.fromkeys(problems))},
        )
    return template


def check_canned_body(body: str) -> None:
    _compile(body)


def canned_context(*, conversation: Conversation, agent: User) -> dict[str, Any]:
    """The only values a canned reply can read."""
    customer = conversation.customer
    last_order: dict[str, str] = {"number": "", "status": "", "total": "", "date": ""}
    from ecrm.commerce.selectors import recent_orders

    orders = recent_orders(customer.pk, limit=1)
    if orders:
        order = orders[0]
        last_order = {
            "number": order.external_id,
            "status": str(order.get_status_display()),
            "total": f"{order.total} {order.currency}",
            "date": order.placed_at.date().isoformat(),
        }
    return {
        "customer": {
            "name": customer.display_name
            or " ".join(p for p in (customer.first_name, customer.last_name) if p),
            "first_name": customer.first_name or customer.display_name,
            "last_name": customer.last_name,
            "email": customer.email or "",
            "city": customer.city,
        },
        "last_order": last_order,
        "agent": {
            "name": agent.get_full_name() or agent.username,
            "first_name": agent.first_name or agent.username,
        },
        "conversation": {"subject": conversation.subject},
    }


def render_canned_reply(canned: CannedReply, *, conversation: Conversation, agent: User) -> str:
    template = _compile(canned.body)
    return template.render(Context(canned_context(conversation=conversation, agent=agent))).strip()


# --- reads ---------------------------------------------------------------------------------------


def _visible_q(user: Any) -> Q:
    if has_perm(user, "conversations.view_all"):
        return Q()
    return Q(team__isnull=True) | Q(team_id__in=user.teams.values("id"))


def canned_replies_for_user(user: Any) -> QuerySet[CannedReply]:
    """Shared replies and those of the user's teams (all for managers)."""
    check_perm(user, "conversations.reply")
    return CannedReply.objects.filter(_visible_q(user)).select_related("team").order_by("name", "id")


def access_canned_reply_for_user(user: Any, reply_id: int) -> CannedReply:
    check_perm(user, "conversations.reply")
    canned = CannedReply.objects.filter(pk=reply_id).filter(_visible_q(user)).first()
    if canned is None:
        raise NotFound("No such canned reply.")
    return canned


def can_manage(user: Any, team_id: int | None) -> bool:
    """Shared replies: admins (conversations.configure) and managers. Team replies: its members too."""
    if not has_perm(user, "conversations.reply"):
        return False
    if has_perm(user, "conversations.configure") or has_perm(user, "conversations.view_all"):
        return True
    return team_id is not None and user.teams.filter(pk=team_id).exists()


def check_can_manage(user: Any, team_id: int | None) -> None:
    if not can_manage(user, team_id):
        raise PermissionDenied("Only admins and managers change shared canned replies; agents their teams'.")


def team_choices_for(user: Any) -> list[tuple[int | None, str]]:
    choices: list[tuple[int | None, str]] = []
    if can_manage(user, None):
        choices.append((None, "Everyone (shared)"))
        teams = Team.objects.order_by("name")
    else:
        teams = user.teams.order_by("name")
    choices.extend((t.pk, t.name) for t in teams)
    return choices


# --- writes --------------------------------------------------------------------------------------


def do_save_canned_reply(
    *, actor: User, canned: CannedReply | None, name: str, body: str, team: int | None = None,
    shortcut: str = "",
) -> CannedReply:  # fmt: skip
    """Create (canned=None) or change a canned reply; the text is checked before it is stored."""
    check_perm(actor, "conversations.reply")
    if canned is not None:
        check_can_manage(actor, canned.team_id)
    check_can_manage(actor, team)
    if not (name or "").strip():
        raise ValidationFailed("Give the reply a name.", fields={"name": "required"})
    if not (body or "").strip():
        raise ValidationFailed("Write the reply's text.", fields={"body": "required"})
    check_canned_body(body)
    with transaction.atomic():
        before = None
        if canned is None:
            canned = CannedReply(created_by=actor)
        else:
            before = {"name": canned.name, "team": canned.team_id, "body": canned.body}
        canned.name, canned.shortcut, canned.body, canned.team_id = name.strip(), shortcut or "", body, team
        canned.save()
        record_audit(actor=actor, action="canned_reply.save", obj=canned, before=before,
                     after={"name": canned.name, "team": canned.team_id, "body": canned.body})  # fmt: skip
    return canned


def do_delete_canned_reply(*, actor: User, canned: CannedReply) -> None:
    check_perm(actor, "conversations.reply")
    check_can_manage(actor, canned.team_id)
    with transaction.atomic():
        record_audit(actor=actor, action="canned_reply.delete", obj=canned,
                     before={"name": canned.name, "team": canned.team_id, "body": canned.body})  # fmt: skip
        canned.delete()
