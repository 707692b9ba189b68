"""What a rule can do when it matches. Each action type validates its parameters on save
(field-level errors) and, at run time, makes its change through the owning app's service, so the
change is audited, emits its own domain events (one step deeper in the chain) and obeys the same
rules as a change made by a person. The acting user is None ("system").

    {"type": "assign",        "team": "Warehouse", "user": "li"}            ticket or conversation
    {"type": "route"}                                                        routing queue (ticket or conversation)
    {"type": "set_field",     "field": "ticket.priority", "value": "high"}   ticket.* or customer.*
    {"type": "add_tag",       "target": "customer", "tag": "vip"}            customer or ticket
    {"type": "change_status", "target": "ticket", "status": "pending"}       ticket or order
    {"type": "send_email",    "to": "customer", "subject": "...", "body": "...", "kind": "service"}
    {"type": "notify_team",   "team": "Finance", "message": "Refund {{ ticket.reference }}"}
    {"type": "create_task",   "title": "...", "due_in": "1d", "team": "Warehouse", "assignee": ""}
    {"type": "webhook",       "endpoint": "ERP"}

Teams, users and endpoints are referred to by name so rules read well and travel in YAML.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.template import Context as TemplateContext
from django.template import Engine, TemplateSyntaxError
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l

from ecrm.core.consumers import publish_each, user_group
from ecrm.core.exceptions import EcrmError

from .conditions import _coerce, parse_duration
from .fields import Context, resolve_field

# plain-text templates: only Django's built-in tags and filters, no loaders, nothing from the app
TEMPLATES = Engine(autoescape=False, libraries={}, builtins=[])
MAX_TEMPLATE = 5000


@dataclass(frozen=True)
class Param:
    name: str
    label: Any
    kind: str = "text"  # text, textarea, template, team, user, endpoint, choice, duration, field
    required: bool = False
    choices: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class ActionType:
    type: str
    label: Any
    params: tuple[Param, ...]
    # which subjects it can act on ("" = any); validated against the rule's triggers
    subjects: tuple[str, ...]
    validate: Callable[[dict, dict], dict]
    run: Callable[[dict, Context, Any], str]
    extra: dict = field(default_factory=dict)


class ActionFailed(Exception):
    """An action could not do its work (logged on the run; the rule's other actions still run)."""


# --- helpers ----------------------------------------------------------------------------------


def _team(name: str):
    from ecrm.core.models import Team

    return Team.objects.filter(name=name).first()


def _user(username: str):
    from ecrm.core.models import User

    return User.objects.filter(username=username, is_active=True).first()


def _need_team(params: dict, errors: dict, key: str = "team", *, required: bool = True) -> str:
    name = str(params.get(key) or "").strip()
    if not name:
        if required:
            errors[key] = _("choose a team")
        return ""
    if _team(name) is None:
        errors[key] = _("no team named %(name)r") % {"name": name}
    return name


def _need_user(params: dict, errors: dict, key: str = "user") -> str:
    name = str(params.get(key) or "").strip()
    if name and _user(name) is None:
        errors[key] = _("no active user named %(name)r") % {"name": name}
    return name


def _template(
    params: dict, errors: dict, key: str, *, required: bool = True, limit: int = MAX_TEMPLATE
) -> str:
    text = str(params.get(key) or "")
    if not text.strip():
        if required:
            errors[key] = _("this field is required")
        return ""
    if len(text) > limit:
        errors[key] = _("at most %(n)s characters") % {"n": limit}
        return text
    try:
        TEMPLATES.from_string(text)
    except TemplateSyntaxError as exc:
        errors[key] = _("template syntax error: %(error)s") % {"error": exc}
    return text


@functools.lru_cache(maxsize=512)
def _compiled(text: str):
    return TEMPLATES.from_string(text)


def render(text: str, ctx: Context) -> str:
    # plain text (mail, notices shown escaped by the console): no HTML escaping here
    return (
        TEMPLATES.from_string(text).render(TemplateContext(template_context(ctx), autoescape=False)).strip()
    )


def subject_url(subject_type: str, subject_id: Any) -> str:
    names = {
        "ticket": ("service:detail", "ticket_id"),
        "conversation": ("conversations:detail", "pk"),
        "order": ("commerce:order_detail", "order_id"),
        "customer": ("customers:detail", "customer_id"),
    }
    if subject_type not in names or subject_id is None:
        return ""
    name, kwarg = names[subject_type]
    try:
        return reverse(name, kwargs={kwarg: subject_id})
    except NoReverseMatch:
        return ""


class _Lazy(dict):
    """A namespace of the template context, read from the rule's context only if the template uses it."""

    def __init__(self, build):
        super().__init__()
        self._build = build
        self._built = False

    def _fill(self) -> None:
        if not self._built:
            self._built = True
            self.update(self._build() or {})

    def __getitem__(self, key):
        self._fill()
        return super().__getitem__(key)

    def __contains__(self, key) -> bool:
        self._fill()
        return super().__contains__(key)

    def get(self, key, default=None):
        self._fill()
        return super().get(key, default)

    def items(self):
        self._fill()
        return super().items()

    def keys(self):
        self._fill()
        return super().keys()

    def __iter__(self):
        self._fill()
        return super().__iter__()

    def __len__(self) -> int:
        self._fill()
        return super().__len__()

    def __bool__(self) -> bool:
        self._fill()
        return super().__len__() > 0


def template_context(ctx: Context) -> dict[str, Any]:
    """A safe context: plain values only (no model instances, so templates cannot call methods),
    read from what the rule's conditions already loaded, and loaded only for the namespaces used."""
    v = ctx.get

    def ticket() -> dict | None:
        if v("ticket.id") is None:
            return None
        return {
            "reference": f"T-{v('ticket.number')}", "number": v("ticket.number"), "subject": v("ticket.subject"),
            "status": v("ticket.status"), "priority": v("ticket.priority"), "type": v("ticket.type"),
            "team": v("ticket.team") or "", "url": _absolute(subject_url("ticket", v("ticket.id"))),
        }  # fmt: skip

    def conversation() -> dict | None:
        if v("conversation.id") is None:
            return None
        return {
            "id": v("conversation.id"), "subject": v("conversation.subject"), "channel": v("conversation.channel"),
            "status": v("conversation.status"),
        }  # fmt: skip

    def order() -> dict | None:
        if v("order.id") is None:
            return None
        total = v("order.total")
        return {
            "number": v("order.external_id"), "status": v("order.status"),
            "total": f"{total:.2f}" if isinstance(total, float) else str(total or ""), "currency": v("order.currency"),
        }  # fmt: skip

    def customer() -> dict | None:
        if v("customer.id") is None:
            return None
        return {
            "name": v("customer.name"), "first_name": v("customer.first_name") or "",
            "last_name": v("customer.last_name") or "", "email": v("customer.email") or "", "city": v("customer.city"),
        }  # fmt: skip

    out: dict[str, Any] = {"event": {"name": ctx.event.name, "chain": ctx.event.chain}}
    for name, build in (
        ("ticket", ticket),
        ("conversation", conversation),
        ("order", order),
        ("customer", customer),
    ):
        if name in ctx.reachable:
            out[name] = _Lazy(build)
    return out


def plain_template_context(ctx: Context) -> dict[str, Any]:
    """The same, fully built (for webhook payloads)."""
    out = {}
    for key, value in template_context(ctx).items():
        if isinstance(value, _Lazy):
            value._fill()
            if not len(value):
                continue
            value = dict(value)
        out[key] = value
    return out


# Live messages of a worker's event are sent together once its rules have run (one trip to the
# channel layer instead of one per rule); outside the engine they go at once. Per thread/task.
_live_buffer: contextvars.ContextVar[list | None] = contextvars.ContextVar("wf_live_buffer", default=None)


def buffer_live() -> contextvars.Token | None:
    """Start collecting live messages (None if an outer evaluation already collects them)."""
    if _live_buffer.get() is not None:
        return None
    return _live_buffer.set([])


def flush_live(token: contextvars.Token | None) -> None:
    if token is None:
        return
    pending = _live_buffer.get()
    _live_buffer.reset(token)
    if pending:
        publish_each(pending)


def _publish_after_commit(payloads: list[tuple[str, dict]]) -> None:
    pending = _live_buffer.get()
    if pending is not None:
        pending.extend(payloads)
    else:
        publish_each(payloads)


def _absolute(path: str) -> str:
    return f"{settings.ECRM_PUBLIC_URL.rstrip('/')}{path}" if path else ""


def _subject(ctx: Context, kinds: tuple[str, ...]):
    for kind in kinds:
        if ctx.event.subject_type == kind:
            obj = ctx.instance(kind)
            if obj is None:
                raise ActionFailed(f"the {kind} is gone")
            return kind, obj
    raise ActionFailed(
        f"this action works on a {' or '.join(kinds)}, not a {ctx.event.subject_type or 'schedule'}"
    )


# --- assign / route -------------------------------------------------------------------------


def _validate_assign(params: dict, errors: dict) -> dict:
    team = _need_team(params, errors, required=False)
    user = _need_user(params, errors)
    if not team and not user and "team" not in errors:
        errors["team"] = _("choose a team, a person or both")
    return {"team": team, "user": user}


def _run_assign(params: dict, ctx: Context, rule: Any) -> str:
    kind, obj = _subject(ctx, ("ticket", "conversation"))
    team = _team(params["team"]) if params.get("team") else None
    user = _user(params["user"]) if params.get("user") else None
    if params.get("team") and team is None:
        raise ActionFailed(f"no team named {params['team']!r}")
    if params.get("user") and user is None:
        raise ActionFailed(f"no active user named {params['user']!r}")
    if kind == "ticket":
        from ecrm.service.services import do_update_ticket

        changes: dict[str, Any] = {}
        if team is not None:
            changes["team"] = team
        if user is not None:
            changes["assignee"] = user
        do_update_ticket(ticket=obj, actor=None, changes=changes)
    else:
        from ecrm.conversations.services import do_assign

        do_assign(
            conversation=obj,
            actor=None,
            assignee=user or obj.assignee,
            team=team,
            reason=f"rule:{rule.name}"[:64],
        )
    return f"{kind} {obj.pk} → {', '.join(x for x in (params.get('team'), params.get('user')) if x)}"


def _validate_route(params: dict, errors: dict) -> dict:
    return {}


def _run_route(params: dict, ctx: Context, rule: Any) -> str:
    kind, obj = _subject(ctx, ("ticket", "conversation"))
    from ecrm.routing.services import enqueue

    item = enqueue(kind=kind, object_id=obj.pk)
    return f"queued as work item {item.pk}" if item is not None else "nothing to route (done or gone)"


# --- set field / add tag / change status -------------------------------------------------------

SETTABLE = {
    "ticket.priority", "ticket.type", "ticket.subject", "ticket.team", "ticket.assignee",
    "customer.lifecycle_stage", "customer.city", "customer.country", "customer.locale", "customer.gender",
}  # fmt: skip


def settable_fields() -> list[str]:
    from ecrm.customers.models import CustomAttributeDefinition
    from ecrm.service.models import TicketFieldDefinition

    extra = [f"ticket.custom.{k}" for k in TicketFieldDefinition.objects.values_list("key", flat=True)]
    extra += [
        f"customer.attributes.{k}" for k in CustomAttributeDefinition.objects.values_list("key", flat=True)
    ]
    return sorted(SETTABLE) + extra


def _validate_set_field(params: dict, errors: dict) -> dict:
    name = str(params.get("field") or "").strip()
    ok = name in SETTABLE or name.startswith(("ticket.custom.", "customer.attributes."))
    definition = resolve_field(name) if ok else None
    if definition is None:
        errors["field"] = (
            _("%(name)r cannot be set by a rule") % {"name": name} if name else _("choose a field")
        )
        return {"field": name, "value": params.get("value")}
    value = params.get("value")
    if value in (None, "") and definition.type in ("ref", "text") and name not in ("ticket.subject",):
        return {"field": name, "value": ""}  # clear it
    try:
        coerced = _coerce(definition, value)
    except ValueError as exc:
        errors["value"] = str(exc)
        return {"field": name, "value": value}
    if hasattr(coerced, "isoformat"):
        coerced = coerced.date().isoformat() if definition.type == "datetime" else coerced.isoformat()
    if isinstance(coerced, float) and coerced.is_integer():
        coerced = int(coerced)
    return {"field": name, "value": coerced}


def _run_set_field(params: dict, ctx: Context, rule: Any) -> str:
    name, value = params["field"], params.get("value")
    namespace = name.split(".", 1)[0]
    if namespace == "ticket":
        _, ticket = _subject(ctx, ("ticket",))
        from ecrm.service.services import do_update_ticket

        if name.startswith("ticket.custom."):
            changes = {"custom_fields": {name.split(".", 2)[2]: value}}
        elif name == "ticket.team":
            team = _team(value) if value else None
            if value and team is None:
                raise ActionFailed(f"no team named {value!r}")
            changes = {"team": team}
        elif name == "ticket.assignee":
            user = _user(value) if value else None
            if value and user is None:
                raise ActionFailed(f"no active user named {value!r}")
            changes = {"assignee": user}
        else:
            changes = {name.split(".", 1)[1]: value}
        do_update_ticket(ticket=ticket, actor=None, changes=changes)
        return f"{name} = {value!r}"
    customer = ctx.instance("customer") if "customer" in ctx.reachable else None
    if customer is None:
        raise ActionFailed("there is no customer to change")
    from ecrm.customers.services import do_update_customer

    if name.startswith("customer.attributes."):
        changes = {"custom_attributes": {**(customer.custom_attributes or {}), name.split(".", 2)[2]: value}}
    else:
        changes = {name.split(".", 1)[1]: value}
    do_update_customer(customer=customer, changes=changes, actor=None)
    return f"{name} = {value!r}"


def _validate_add_tag(params: dict, errors: dict) -> dict:
    target = str(params.get("target") or "customer")
    if target not in ("customer", "ticket"):
        errors["target"] = _("customer or ticket")
    tag = " ".join(str(params.get("tag") or "").split())
    if not tag:
        errors["tag"] = _("this field is required")
    elif len(tag) > 64:
        errors["tag"] = _("at most %(n)s characters") % {"n": 64}
    return {"target": target, "tag": tag}


def _run_add_tag(params: dict, ctx: Context, rule: Any) -> str:
    tag = params["tag"]
    if params.get("target") == "ticket":
        _, ticket = _subject(ctx, ("ticket",))
        from ecrm.service.services import do_update_ticket

        names = list(ticket.tags.values_list("name", flat=True))
        if tag.lower() in names:
            return f"ticket already tagged {tag!r}"
        do_update_ticket(ticket=ticket, actor=None, changes={"tags": [*names, tag]})
        return f"ticket tagged {tag!r}"
    customer = ctx.instance("customer") if "customer" in ctx.reachable else None
    if customer is None:
        raise ActionFailed("there is no customer to tag")
    from ecrm.customers.services import do_add_tag

    added = do_add_tag(customer=customer, name=tag, actor=None)
    return f"customer tagged {tag!r}" if added else f"customer already tagged {tag!r}"


def _status_choices(target: str) -> tuple[str, ...]:
    if target == "conversation":
        from ecrm.conversations.models import ConversationStatus

        return tuple(ConversationStatus.values)
    if target == "order":
        from ecrm.commerce.models import OrderStatus

        return tuple(OrderStatus.values)
    from ecrm.service.models import TicketStatus

    return tuple(TicketStatus.values)


def _validate_change_status(params: dict, errors: dict) -> dict:
    target = str(params.get("target") or "ticket")
    if target not in ("ticket", "order", "conversation"):
        errors["target"] = _("ticket, order or conversation")
        return {"target": target, "status": params.get("status")}
    status = str(params.get("status") or "")
    if status not in _status_choices(target):
        errors["status"] = _("one of %(choices)s") % {"choices": ", ".join(_status_choices(target))}
    return {"target": target, "status": status}


def _run_change_status(params: dict, ctx: Context, rule: Any) -> str:
    target, status = params["target"], params["status"]
    if target == "ticket":
        _, ticket = _subject(ctx, ("ticket",))
        from ecrm.service.services import do_set_ticket_status

        do_set_ticket_status(ticket=ticket, actor=None, status=status)
        return f"ticket status {status}"
    if target == "conversation":
        _, conversation = _subject(ctx, ("conversation",))
        from ecrm.conversations.services import do_set_status

        do_set_status(conversation=conversation, actor=None, status=status)
        return f"conversation status {status}"
    order = ctx.instance("order") if "order" in ctx.reachable else None
    if order is None:
        raise ActionFailed("there is no order")
    from ecrm.commerce.services import do_change_order_status

    do_change_order_status(order=order, status=status, actor=None, note=f"rule: {rule.name}")
    return f"order status {status}"


# --- email / notify / task / webhook ---------------------------------------------------------------


def _validate_send_email(params: dict, errors: dict) -> dict:
    to = str(params.get("to") or "customer").strip()
    if to != "customer":
        from django.core.exceptions import ValidationError
        from django.core.validators import validate_email

        try:
            validate_email(to)
        except ValidationError:
            errors["to"] = _("customer, or an email address")
    kind = str(params.get("kind") or "service")
    if kind not in ("service", "marketing"):
        errors["kind"] = _("service or marketing")
    subject = _template(params, errors, "subject", limit=300)
    body = _template(params, errors, "body")
    return {"to": to, "subject": subject, "body": body, "kind": kind}


def _run_send_email(params: dict, ctx: Context, rule: Any) -> str:
    from django.core.mail import send_mail

    customer = ctx.instance("customer") if "customer" in ctx.reachable else None
    if params["to"] == "customer":
        if customer is None or not customer.email:
            raise ActionFailed("the customer has no email address")
        address = customer.email
    else:
        address = params["to"]
    if customer is not None and params["to"] == "customer":
        from ecrm.customers.models import Consent

        consent = Consent.objects.filter(customer=customer, channel="email", purpose=params["kind"]).first()
        # marketing mail needs a consent given; service mail goes unless the customer refused it
        if params["kind"] == "marketing" and (consent is None or not consent.granted):
            return "not sent: no marketing consent for email"
        if consent is not None and not consent.granted:
            return f"not sent: {params['kind']} email refused by the customer"
    subject = " ".join(render(params["subject"], ctx).split())[:300]
    body = render(params["body"], ctx)
    # mail leaves only once the rule's changes are committed
    transaction.on_commit(
        lambda: send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [address], fail_silently=False)
    )
    return f"email to {address}: {subject}"


def _validate_notify(params: dict, errors: dict) -> dict:
    team = _need_team(params, errors)
    message = _template(params, errors, "message", limit=1000)
    return {"team": team, "message": message}


def _run_notify(params: dict, ctx: Context, rule: Any) -> str:
    from .models import Notification

    team = _team(params["team"])
    if team is None:
        raise ActionFailed(f"no team named {params['team']!r}")
    members = list(team.members.filter(is_active=True).order_by("id"))
    message = render(params["message"], ctx)[:1000]
    event = ctx.event
    url = subject_url(event.subject_type, event.subject_id)
    now = timezone.now()
    notices = Notification.objects.bulk_create(
        [
            Notification(
                user=m, team=team, rule_id=getattr(rule, "id", None), message=message,
                subject_type=event.subject_type, subject_id=event.subject_id, url=url, created_at=now,
            )
            for m in members
        ]
    )  # fmt: skip

    payloads = [
        (user_group(notice.user_id), {
            "type": "workflows.notification", "id": notice.pk, "message": message, "url": url,
            "team": team.name, "subject_type": event.subject_type, "subject_id": event.subject_id,
        })
        for notice in notices
    ]  # fmt: skip
    transaction.on_commit(lambda: _publish_after_commit(payloads))
    return f"notified {len(members)} member(s) of {team.name}"


def _validate_task(params: dict, errors: dict) -> dict:
    title = _template(params, errors, "title", limit=200)
    description = _template(params, errors, "description", required=False)
    due_in = str(params.get("due_in") or "").strip()
    if due_in:
        try:
            parse_duration(due_in)
        except ValueError as exc:
            errors["due_in"] = str(exc)
    team = _need_team(params, errors, required=False)
    assignee = str(params.get("assignee") or "").strip()
    if assignee and assignee != "subject_assignee":
        _need_user(params, errors, "assignee")
    if not team and not assignee and "team" not in errors:
        errors["team"] = _("give the task a team, a person or both")
    return {"title": title, "description": description, "due_in": due_in, "team": team, "assignee": assignee}


def _run_task(params: dict, ctx: Context, rule: Any) -> str:
    from .models import Task

    team = _team(params["team"]) if params.get("team") else None
    if params.get("team") and team is None:
        raise ActionFailed(f"no team named {params['team']!r}")
    assignee = None
    if params.get("assignee") == "subject_assignee":
        subject = ctx.instance(ctx.event.subject_type) if ctx.event.subject_type in ctx.reachable else None
        assignee = getattr(subject, "assignee", None)
    elif params.get("assignee"):
        assignee = _user(params["assignee"])
        if assignee is None:
            raise ActionFailed(f"no active user named {params['assignee']!r}")
    event = ctx.event
    task = Task.objects.create(
        title=render(params["title"], ctx)[:200],
        description=render(params["description"], ctx) if params.get("description") else "",
        due_at=timezone.now() + parse_duration(params["due_in"]) if params.get("due_in") else None,
        team=team,
        assignee=assignee,
        subject_type=event.subject_type,
        subject_id=event.subject_id,
        url=subject_url(event.subject_type, event.subject_id),
        rule_id=getattr(rule, "id", None),
    )
    return f"task {task.pk}: {task.title}"


def _endpoint(name: str):
    try:
        from ecrm.webhooks.models import Endpoint
    except ImportError:  # webhooks not installed
        return None
    return Endpoint.objects.filter(name=name).order_by("id").first()


def _validate_webhook(params: dict, errors: dict) -> dict:
    name = str(params.get("endpoint") or "").strip()
    if not name:
        errors["endpoint"] = _("choose an endpoint")
    elif _endpoint(name) is None:
        errors["endpoint"] = _("no webhook endpoint named %(name)r") % {"name": name}
    return {"endpoint": name}


def _run_webhook(params: dict, ctx: Context, rule: Any) -> str:
    from ecrm.webhooks.services import send_to_endpoint

    endpoint = _endpoint(params["endpoint"])
    if endpoint is None:
        raise ActionFailed(f"no webhook endpoint named {params['endpoint']!r}")
    event = ctx.event
    payload = {
        "id": event.id,
        "rule": getattr(rule, "name", ""),
        "event": event.as_dict(),
        **{k: v for k, v in plain_template_context(ctx).items() if k != "event"},
    }
    delivery = send_to_endpoint(endpoint.pk, event.name, payload)
    return f"webhook delivery {delivery.pk} to {endpoint.name}"


ACTIONS: dict[str, ActionType] = {
    a.type: a
    for a in [
        ActionType("assign", _l("Assign"), (Param("team", _l("Team"), "team"), Param("user", _l("Person"), "user")),
                   ("ticket", "conversation"), _validate_assign, _run_assign),
        ActionType("route", _l("Route to the best agent"), (), ("ticket", "conversation"), _validate_route, _run_route),
        ActionType("set_field", _l("Set a field"), (Param("field", _l("Field"), "field", True), Param("value", _l("Value"))),
                   ("ticket", "conversation", "order", "customer"), _validate_set_field, _run_set_field),
        ActionType("add_tag", _l("Add a tag"),
                   (Param("target", _l("On"), "choice", True, (("customer", _l("Customer")), ("ticket", _l("Ticket")))),
                    Param("tag", _l("Tag"), "text", True)),
                   ("ticket", "conversation", "order", "customer"), _validate_add_tag, _run_add_tag),
        ActionType("change_status", _l("Change status"),
                   (Param("target", _l("Of"), "choice", True, (("ticket", _l("Ticket")), ("order", _l("Order")),
                                                               ("conversation", _l("Conversation")))),
                    Param("status", _l("Status"), "text", True)),
                   ("ticket", "order", "conversation"), _validate_change_status, _run_change_status),
        ActionType("send_email", _l("Send an email"),
                   (Param("to", _l("To (customer or an address)"), "text", True),
                    Param("kind", _l("Kind"), "choice", True, (("service", _l("Service")), ("marketing", _l("Marketing")))),
                    Param("subject", _l("Subject"), "template", True), Param("body", _l("Text"), "textarea", True)),
                   ("ticket", "conversation", "order", "customer", ""), _validate_send_email, _run_send_email),
        ActionType("notify_team", _l("Notify a team"),
                   (Param("team", _l("Team"), "team", True), Param("message", _l("Message"), "template", True)),
                   ("ticket", "conversation", "order", "customer", "callback", ""), _validate_notify, _run_notify),
        ActionType("create_task", _l("Create a task"),
                   (Param("title", _l("Title"), "template", True), Param("description", _l("Description"), "textarea"),
                    Param("due_in", _l("Due in (30m, 4h, 2d)"), "duration"), Param("team", _l("Team"), "team"),
                    Param("assignee", _l("Person (or subject_assignee)"), "user")),
                   ("ticket", "conversation", "order", "customer", "callback", ""), _validate_task, _run_task),
        ActionType("webhook", _l("Call an outgoing webhook"), (Param("endpoint", _l("Endpoint"), "endpoint", True),),
                   ("ticket", "conversation", "order", "customer", "callback", ""), _validate_webhook, _run_webhook),
    ]
}  # fmt: skip


def validate_action(raw: Any, subjects: set[str]) -> tuple[dict, dict[str, str]]:
    """(clean action, {param: error}) for one action against the subject types of the rule's triggers."""
    if not isinstance(raw, dict):
        return {}, {"type": "an action is an object with a type"}
    kind = str(raw.get("type") or "")
    spec = ACTIONS.get(kind)
    if spec is None:
        return {}, {"type": f"unknown action {kind!r}; use one of {', '.join(ACTIONS)}"}
    errors: dict[str, str] = {}
    params = {k: v for k, v in raw.items() if k != "type"}
    clean = spec.validate(params, errors)
    bad = sorted(
        s or "schedule" for s in subjects if s not in spec.subjects and not (s == "" and "" in spec.subjects)
    )
    if bad and "type" not in errors:
        errors["type"] = _("%(action)s cannot act on %(subjects)s events") % {
            "action": spec.type,
            "subjects": ", ".join(bad),
        }
    return {"type": kind, **clean}, errors


def run_action(action: dict, ctx: Context, rule: Any) -> str:
    spec = ACTIONS[action["type"]]
    params = {k: v for k, v in action.items() if k != "type"}
    try:
        return spec.run(params, ctx, rule)
    except EcrmError as exc:
        detail = "; ".join(f"{k}: {v}" for k, v in exc.fields.items())
        raise ActionFailed(f"{exc.message} {detail}".strip()) from exc
