"""What a rule can look at: the field catalogue (namespace.field -> type) and the lazily loaded
context an event is evaluated against.

A context loads each namespace (the ticket, its customer, its order...) with one query the first
time any rule asks for one of its fields, and shares it between every rule evaluated for the same
event, so 100 rules on one event cost the same few queries as one rule.

Team and user fields hold *names* (team name, username), not ids, so rules read well and travel
between installations in YAML.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

from ecrm.core.events import Event

MISSING = object()

# types: text, choice, number, datetime, bool, tags, ref (a team or user name), any (event data)
GENERIC_OPS = ("eq", "ne", "in", "not_in", "is_set", "is_empty", "changed", "changed_to", "changed_from")
OPS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "text": (*GENERIC_OPS, "contains", "matches"),
    "choice": GENERIC_OPS,
    "ref": GENERIC_OPS,
    "number": (*GENERIC_OPS, "gt", "gte", "lt", "lte"),
    "datetime": ("is_set", "is_empty", "gt", "gte", "lt", "lte", "within_last", "older_than", "changed"),
    "bool": ("eq", "ne", "is_set", "is_empty", "changed", "changed_to", "changed_from"),
    "tags": ("contains", "not_contains", "is_set", "is_empty", "changed"),
    "any": (
        *GENERIC_OPS, "contains", "not_contains", "matches", "gt", "gte", "lt", "lte", "within_last", "older_than",
    ),
}  # fmt: skip
ALL_OPS = tuple(dict.fromkeys(op for ops in OPS_BY_TYPE.values() for op in ops))


@dataclass(frozen=True)
class Field:
    type: str
    label: str
    choices: tuple[str, ...] = ()
    ref: str = ""  # "team" or "user" for ref fields
    change_keys: tuple[str, ...] = ()  # keys in event.data["changes"] for changed/changed_to/from


def _choices(cls) -> tuple[str, ...]:
    return tuple(cls.values)


def catalogue() -> dict[str, Field]:
    """Every static field a condition may use (custom attributes and event data are added dynamically)."""
    global _CATALOGUE
    if _CATALOGUE is None:
        from ecrm.analytics.models import ChurnBand, ClvBand
        from ecrm.commerce.models import OrderStatus
        from ecrm.conversations.models import ChannelKind, ConversationStatus
        from ecrm.customers.models import CustomerStatus, Gender, LifecycleStage
        from ecrm.service.models import Priority, TicketSource, TicketStatus, TicketType

        f = Field
        _CATALOGUE = {
            "ticket.id": f("number", _("Ticket id")),
            "ticket.number": f("number", _("Ticket number")),
            "ticket.subject": f("text", _("Subject"), change_keys=("subject",)),
            "ticket.description": f("text", _("Description")),
            "ticket.type": f("choice", _("Type"), _choices(TicketType), change_keys=("type",)),
            "ticket.priority": f("choice", _("Priority"), _choices(Priority), change_keys=("priority",)),
            "ticket.status": f("choice", _("Status"), _choices(TicketStatus), change_keys=("status",)),
            "ticket.source": f("choice", _("Source"), _choices(TicketSource)),
            "ticket.team": f("ref", _("Team"), ref="team", change_keys=("team_id", "team")),
            "ticket.assignee": f("ref", _("Assignee"), ref="user", change_keys=("assignee_id", "assignee")),
            "ticket.tags": f("tags", _("Tags"), change_keys=("tags",)),
            "ticket.created_at": f("datetime", _("Created")),
            "ticket.updated_at": f("datetime", _("Updated")),
            "ticket.solved_at": f("datetime", _("Solved"), change_keys=("solved_at",)),
            "ticket.first_response_due": f("datetime", _("First response due")),
            "ticket.resolution_due": f("datetime", _("Resolution due")),
            "ticket.first_response_breached": f("bool", _("First response breached")),
            "ticket.resolution_breached": f("bool", _("Resolution breached")),
            "conversation.id": f("number", _("Conversation id")),
            "conversation.channel": f("choice", _("Channel"), _choices(ChannelKind)),
            "conversation.status": f(
                "choice", _("Status"), _choices(ConversationStatus), change_keys=("status",)
            ),
            "conversation.subject": f("text", _("Subject")),
            "conversation.team": f("ref", _("Team"), ref="team", change_keys=("team", "team_id")),
            "conversation.assignee": f(
                "ref", _("Assignee"), ref="user", change_keys=("assignee", "assignee_id")
            ),
            "conversation.unread": f("number", _("Unread messages")),
            "conversation.created_at": f("datetime", _("Created")),
            "conversation.last_message_at": f("datetime", _("Last message")),
            "conversation.last_inbound_at": f("datetime", _("Last customer message")),
            "conversation.first_response_at": f("datetime", _("First response")),
            "order.id": f("number", _("Order id")),
            "order.external_id": f("text", _("Order number")),
            "order.status": f("choice", _("Status"), _choices(OrderStatus), change_keys=("status",)),
            "order.channel": f("text", _("Sales channel")),
            "order.total": f("number", _("Total")),
            "order.currency": f("text", _("Currency")),
            "order.placed_at": f("datetime", _("Placed")),
            "order.shipping_city": f("text", _("Shipping city")),
            "order.shipping_country": f("text", _("Shipping country")),
            "customer.id": f("number", _("Customer id")),
            "customer.name": f("text", _("Name"), change_keys=("display_name",)),
            "customer.email": f("text", _("Email"), change_keys=("email",)),
            "customer.phone": f("text", _("Phone"), change_keys=("phone",)),
            "customer.city": f("text", _("City"), change_keys=("city",)),
            "customer.country": f("text", _("Country"), change_keys=("country",)),
            "customer.locale": f("text", _("Language"), change_keys=("locale",)),
            "customer.gender": f("choice", _("Gender"), _choices(Gender), change_keys=("gender",)),
            "customer.lifecycle_stage": f(
                "choice", _("Lifecycle stage"), _choices(LifecycleStage), change_keys=("lifecycle_stage",)
            ),
            "customer.status": f("choice", _("Status"), _choices(CustomerStatus), change_keys=("status",)),
            "customer.tags": f("tags", _("Tags"), change_keys=("tags",)),
            "customer.created_at": f("datetime", _("Created")),
            "customer.last_seen_at": f("datetime", _("Last seen")),
            "customer.score.segment": f("text", _("RFM segment"), change_keys=("segment", "rfm_segment")),
            "customer.score.churn_band": f(
                "choice", _("Churn risk tier"), _choices(ChurnBand), change_keys=("churn_band",)
            ),
            "customer.score.churn_risk": f("number", _("Churn risk (0-1)")),
            "customer.score.clv_band": f(
                "choice", _("CLV band"), _choices(ClvBand), change_keys=("clv_band",)
            ),
            "customer.score.clv_12m": f("number", _("CLV 12 months")),
            "customer.score.cluster": f("text", _("Cluster")),
            "event.name": f("text", _("Event name")),
            "event.chain": f("number", _("Automation depth")),
            "event.actor": f("ref", _("Acting user"), ref="user"),
        }
    return _CATALOGUE


_CATALOGUE: dict[str, Field] | None = None
ATTRIBUTE_TYPES = {
    "text": "text",
    "number": "number",
    "date": "datetime",
    "boolean": "bool",
    "choice": "choice",
}

# which namespaces an event's subject reaches
NAMESPACES_BY_SUBJECT: dict[str, tuple[str, ...]] = {
    "ticket": ("ticket", "customer", "order", "event"),
    "conversation": ("conversation", "customer", "event"),
    "order": ("order", "customer", "event"),
    "customer": ("customer", "event"),
    "callback": ("customer", "event"),
    "": ("event",),
}
SUBJECT_TYPES = ("ticket", "conversation", "order", "customer")


def resolve_field(path: str) -> Field | None:
    """The field definition for `path`, including custom attributes and event data; None if unknown."""
    field = catalogue().get(path)
    if field is not None:
        return field
    if path.startswith("event.") and len(path) > 6:
        parts = path.split(".")
        if parts[1] in ("changes", "data", "fields") and len(parts) >= 3:
            return Field("any", path)
        return None
    if path.startswith("customer.attributes."):
        from ecrm.customers.models import CustomAttributeDefinition

        definition = CustomAttributeDefinition.objects.filter(key=path.split(".", 2)[2]).first()
        if definition is None:
            return None
        return Field(
            ATTRIBUTE_TYPES.get(definition.type, "any"),
            definition.label,
            tuple(definition.choices or ()),
            change_keys=("custom_attributes",),
        )
    if path.startswith("ticket.custom."):
        from ecrm.service.models import TicketFieldDefinition

        definition = TicketFieldDefinition.objects.filter(key=path.split(".", 2)[2]).first()
        if definition is None:
            return None
        return Field(
            ATTRIBUTE_TYPES.get(definition.type, "any"), definition.label, tuple(definition.choices or ())
        )
    return None


def plain_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return value


# --- the lazily loaded context ------------------------------------------------------------------


# Columns each namespace loads, as ORM lookups; "<ns>.<key>" takes the name before "__" (team__name -> team).
COLUMNS: dict[str, tuple[str, ...]] = {
    "ticket": (
        "id", "number", "subject", "description", "type", "priority", "status", "source", "team__name",
        "assignee__username", "created_at", "updated_at", "solved_at", "first_response_due", "resolution_due",
        "first_response_breached", "resolution_breached", "customer_id", "order_id",
    ),
    "conversation": (
        "id", "channel", "status", "subject", "team__name", "assignee__username", "unread", "created_at",
        "last_message_at", "last_inbound_at", "first_response_at", "customer_id",
    ),
    "order": (
        "id", "external_id", "status", "channel", "total", "currency", "placed_at", "shipping_city",
        "shipping_country", "customer_id",
    ),
    "customer": (
        "id", "display_name", "email", "phone", "city", "country", "locale", "gender", "lifecycle_stage",
        "status", "created_at", "last_seen_at", "custom_attributes", "first_name", "last_name",
    ),
}  # fmt: skip
DATETIME_KEYS = {
    "created_at", "updated_at", "solved_at", "first_response_due", "resolution_due", "last_message_at",
    "last_inbound_at", "first_response_at", "placed_at", "last_seen_at",
}  # fmt: skip
BOOL_KEYS = {"first_response_breached", "resolution_breached"}
_MARKER = -987_654_321
_SQL: dict[tuple[str, str, str], tuple[str, list[Any], int]] = {}


def _models() -> dict[str, Any]:
    from ecrm.commerce.models import Order
    from ecrm.conversations.models import Conversation
    from ecrm.customers.models import Customer, CustomerTag
    from ecrm.service.models import Ticket

    return {
        "ticket": Ticket.objects.all(),
        "conversation": Conversation.objects.all(),
        "order": Order.objects.all(),
        "customer": Customer.objects.all(),
        "customer.tags": CustomerTag.objects.values_list("tag__name"),
        "ticket.tags": Ticket.tags.through.objects.values_list("tickettag__name"),
    }


def fetch(key: str, object_id: int, *, many: bool = False) -> Any:
    """One row (or all rows) of a namespace by id, with SQL compiled once per process.

    Compiling a Django query costs about as much as running it on a small row (a few joins over wide
    models), and a rule evaluation does nothing else, so the SQL of each query shape is built once
    by the ORM (table and column names, joins) and then re-executed with the id swapped in."""
    from django.db import connection

    cache_key = (key, connection.vendor, connection.alias)
    entry = _SQL.get(cache_key)
    if entry is None:
        if key in ("customer.tags", "ticket.tags"):
            owner = "customer_id" if key == "customer.tags" else "ticket_id"
            qs = _models()[key].filter(**{owner: _MARKER})
        else:
            qs = _models()[key].filter(pk=_MARKER).order_by().values_list(*COLUMNS[key])
        sql, params = qs.query.sql_with_params()
        params = list(params)
        entry = (sql, params, params.index(_MARKER))
        _SQL[cache_key] = entry
    sql, params, index = entry
    args = list(params)
    args[index] = object_id
    with connection.cursor() as cursor:
        cursor.execute(sql, args)
        return cursor.fetchall() if many else cursor.fetchone()


def _clean(key: str, value: Any) -> Any:
    if value is None:
        return None
    if key in DATETIME_KEYS:
        if isinstance(value, str):
            value = parse_datetime(value)
        if isinstance(value, dt.datetime) and timezone.is_naive(value):
            value = timezone.make_aware(value, dt.UTC)
        return value
    if key in BOOL_KEYS:
        return bool(value)
    if isinstance(value, Decimal):
        return float(value)
    return value


class Context:
    """The values one event's rules look at, loaded on first use (see the module docstring)."""

    def __init__(self, event: Event, *, instance: Any = None):
        self.event = event
        self.values: dict[str, Any] = {}
        self.memo: dict[int, bool] = {}  # shared condition results (see conditions._shared)
        self._loaded: set[str] = set()
        self._instances: dict[str, Any] = {}
        self._ids: dict[str, Any] = {}
        self._attributes: dict[str, Any] = {}
        self.reachable = NAMESPACES_BY_SUBJECT.get(event.subject_type, ("event",))
        if event.subject_type in COLUMNS:
            self._ids[event.subject_type] = event.subject_id
        if instance is not None:
            self._given = (event.subject_type, instance)
        else:
            self._given = None
        self._changes = (event.data or {}).get("changes") or {}

    def refresh(self) -> None:
        """Forget what was loaded: an action changed the records, later actions and rules see the new state."""
        self.values.clear()
        self.memo.clear()
        self._loaded.clear()
        self._instances.clear()
        self._given = None
        self._attributes = {}
        self._ids = (
            {self.event.subject_type: self.event.subject_id} if self.event.subject_type in COLUMNS else {}
        )

    # -- reading
    def get(self, path: str) -> Any:
        value = self.values.get(path, MISSING)
        if value is not MISSING:
            return value
        namespace = path.split(".", 1)[0]
        if path.startswith(("customer.score.", "customer.tags", "ticket.tags", "customer.attributes.",
                            "ticket.custom.")) or namespace == "event":  # fmt: skip
            value = self._load_extra(path)
            self.values[path] = value
            return value
        if namespace not in self._loaded:
            self._load(namespace)
            return self.values.get(path)
        return None

    def change(self, keys: tuple[str, ...], path: str) -> list[Any] | None:
        """[old, new] for the field from event.data["changes"], or None if it did not change."""
        for key in keys:
            pair = self._changes.get(key)
            if pair is not None:
                if key == "custom_attributes" and isinstance(pair, list) and len(pair) == 2:
                    attr = path.split(".", 2)[2]
                    old, new = ((pair[0] or {}).get(attr), (pair[1] or {}).get(attr))
                    return None if old == new else [old, new]
                return pair if isinstance(pair, list | tuple) and len(pair) == 2 else [None, pair]
        return None

    def instance(self, namespace: str) -> Any:
        """The model instance behind a namespace (actions and templates use it), or None."""
        if namespace in self._instances:
            return self._instances[namespace]
        if namespace not in self.reachable:
            return None
        if namespace not in self._loaded:
            self._load(namespace)
        object_id = self._ids.get(namespace)
        obj = None
        if object_id is not None:
            qs = _models()[namespace]
            if namespace in ("ticket", "conversation"):
                qs = qs.select_related("team", "assignee", "customer")
            obj = qs.filter(pk=object_id).first()
        self._instances[namespace] = obj
        return obj

    # -- loading
    def _load(self, namespace: str) -> None:
        self._loaded.add(namespace)
        if namespace not in self.reachable or namespace not in COLUMNS:
            return
        if namespace != self.event.subject_type and namespace not in self._ids:
            # reached through the subject: its customer, a ticket's order
            if namespace == "customer" and self.event.subject_type == "callback":
                cid = (self.event.data or {}).get("customer")
                self._ids["customer"] = cid if isinstance(cid, int) else None
            else:
                holder = self.event.subject_type if namespace == "customer" else "ticket"
                if holder not in self._loaded:
                    self._load(holder)
        object_id = self._ids.get(namespace)
        if object_id is None:
            return
        if self._given is not None and self._given[0] == namespace:
            obj = self._given[1]
            row = tuple(_attr(obj, c) for c in COLUMNS[namespace])
            self._instances[namespace] = obj
        else:
            row = fetch(namespace, object_id)
        if row is None:
            return
        v = self.values
        for column, raw in zip(COLUMNS[namespace], row, strict=True):
            if column in ("customer_id", "order_id"):  # links to the namespaces reached through this one
                self._ids.setdefault(column[:-3], raw)
                continue
            key = column.split("__", 1)[0]
            v[f"{namespace}.{key}"] = _clean(key, raw)
        if namespace == "customer":
            attrs = v.pop("customer.custom_attributes", None)
            if isinstance(attrs, str):
                attrs = json.loads(attrs or "{}")
            self._attributes = attrs or {}
            name = v.pop("customer.display_name", None)
            v["customer.name"] = (
                name or v.get("customer.email") or v.get("customer.phone") or f"Customer #{object_id}"
            )

    def _load_extra(self, path: str) -> Any:
        namespace = path.split(".", 1)[0]
        if namespace not in self.reachable:
            return None
        if namespace == "event":
            return self._event_value(path)
        if namespace not in self._loaded:
            self._load(namespace)
        object_id = self._ids.get(namespace)
        if object_id is None or f"{namespace}.id" not in self.values:
            return None
        if path in ("customer.tags", "ticket.tags"):
            return frozenset(str(name).lower() for (name,) in fetch(path, object_id, many=True))
        if path.startswith("customer.attributes."):
            return self._attributes.get(path.split(".", 2)[2])
        if path.startswith("ticket.custom."):
            ticket = self.instance("ticket")
            return (ticket.custom_fields or {}).get(path.split(".", 2)[2]) if ticket is not None else None
        score = self._score(object_id)
        if score is None:
            return None
        attr = {"segment": "rfm_segment", "cluster": "cluster_label"}.get(
            path.split(".", 2)[2], path.split(".", 2)[2]
        )
        return plain_value(getattr(score, attr, None))

    def _score(self, customer_id: int) -> Any:
        if "score" not in self._instances:
            from ecrm.analytics.models import CustomerScore

            self._instances["score"] = (
                CustomerScore.objects.filter(customer_id=customer_id, run__is_current=True)
                .order_by("-id")
                .first()
            )
        return self._instances["score"]

    def _event_value(self, path: str) -> Any:
        e = self.event
        parts = path.split(".")[1:]
        if parts == ["name"]:
            return e.name
        if parts == ["chain"]:
            return e.chain
        if parts == ["actor"]:
            return _username(e.actor_id)
        if parts[0] == "data":
            parts = parts[1:]
        value: Any = e.data or {}
        for i, part in enumerate(parts):
            if (
                isinstance(value, list | tuple)
                and len(value) == 2
                and part in ("old", "new")
                and i == len(parts) - 1
            ):
                return value[0 if part == "old" else 1]
            if isinstance(value, dict):
                value = value.get(part)
            else:
                return None
        return value


def _attr(obj: Any, column: str) -> Any:
    """A COLUMNS lookup read from a model instance (team__name -> obj.team.name)."""
    value = obj
    for part in column.split("__"):
        if value is None:
            return None
        value = getattr(value, part, None)
    return value


def _username(user_id: Any) -> str | None:
    # not cached across events: ids are reused after rollbacks in tests and names change
    if not isinstance(user_id, int):
        return None
    from ecrm.core.models import User

    return User.objects.filter(pk=user_id).values_list("username", flat=True).first()


def _team_name(team_id: Any) -> str | None:
    if not isinstance(team_id, int):
        return None
    from ecrm.core.models import Team

    return Team.objects.filter(pk=team_id).values_list("name", flat=True).first()


def ref_name(kind: str, value: Any) -> Any:
    """A changed team/user id (as events carry them) as the name conditions compare with."""
    if value is None or isinstance(value, str):
        return value
    return _team_name(value) if kind == "team" else _username(value)


def now() -> dt.datetime:
    return timezone.now()
