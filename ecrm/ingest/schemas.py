"""The shapes of what shops and the browser tracker send, and of what the ingest API answers.

Event and identify items are plain pydantic models (not ninja `Schema`s): the batch path validates up
to 1,000 of them per request one by one, so that a bad item is reported on its own while the good ones
are stored, and plain models skip ninja's Django-object hooks on that hot path.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from ninja import Schema
from pydantic import AliasChoices, AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

# Event types the tracker and the shop send. `track` is a custom event and needs a name; the others are
# the e-commerce funnel the CRM understands (page view -> product view -> add to cart -> checkout).
EVENT_TYPES = (
    "page",
    "track",
    "product_view",
    "add_to_cart",
    "remove_from_cart",
    "checkout",
    "purchase",
    "search",
)
EventType = Literal[
    "page", "track", "product_view", "add_to_cart", "remove_from_cart", "checkout", "purchase", "search"
]

# How far in the future an event's time may be (browser clocks drift); beyond that it is refused.
MAX_CLOCK_SKEW = dt.timedelta(days=1)


def _alias(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class _Item(BaseModel):
    # Unknown keys are refused (a typo like "occured_at" must not silently drop the time).
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)

    anonymous_id: str | None = Field(
        None, max_length=64, min_length=1, validation_alias=_alias("anonymous_id", "anonymousId")
    )
    user_id: str | None = Field(
        None,
        max_length=254,
        min_length=1,
        validation_alias=_alias("user_id", "userId"),
        description="The shop's own account id of the person (identity kind `external`).",
    )
    email: str | None = Field(None, max_length=254)
    phone: str | None = Field(None, max_length=32)
    occurred_at: AwareDatetime | None = Field(
        None,
        validation_alias=_alias("occurred_at", "timestamp"),
        description="When it happened, ISO 8601 with a UTC offset (naive times are refused). Default: now.",
    )


class EventIn(_Item):
    """One behavioural event. Needs at least one of anonymous_id, user_id, email or phone."""

    type: EventType = "track"
    event_id: str = Field(
        min_length=1,
        max_length=64,
        validation_alias=_alias("event_id", "messageId", "message_id"),
        description="The sender's unique id for this event: a resend with the same id is stored once.",
    )
    name: str = Field("", max_length=128, description="Event name; required for type `track`.")
    properties: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict, description="page url, user agent, campaign…")


class IdentifyIn(_Item):
    """Who an anonymous visitor is: links the anonymous id to the customer and moves its past events."""

    type: Literal["identify"] = "identify"
    event_id: str | None = Field(
        None, max_length=64, validation_alias=_alias("event_id", "messageId", "message_id")
    )
    traits: dict[str, Any] = Field(
        default_factory=dict,
        description="Profile fields: first_name, last_name, email, phone, birthday, gender, locale, city, "
        "country, lifecycle_stage, custom_attributes.",
    )


class BatchIn(BaseModel):
    """Up to 1,000 events and identify calls, processed item by item."""

    batch: list[EventIn | IdentifyIn] = Field(max_length=1000)
    sent_at: AwareDatetime | None = None


class TrackerBatchIn(BatchIn):
    """What the browser tracker sends to /t (as text/plain, so it needs no CORS preflight)."""

    key: str = Field(description="A tracking-scope API key (it is public: it can only send events).")


EVENT_ADAPTER = TypeAdapter(EventIn)
IDENTIFY_ADAPTER = TypeAdapter(IdentifyIn)


def item_rule_errors(item: EventIn | IdentifyIn, now: dt.datetime) -> dict[str, str]:
    """Rules across fields, checked after the schema (kept out of pydantic validators so that each error
    keeps its own field path)."""
    errors: dict[str, str] = {}
    if item.occurred_at is not None and item.occurred_at > now + MAX_CLOCK_SKEW:
        errors["occurred_at"] = "is more than a day in the future"
    if isinstance(item, EventIn):
        if item.type == "track" and not item.name:
            errors["name"] = "is required for a `track` event"
        if not (item.anonymous_id or item.user_id or item.email or item.phone):
            errors["anonymous_id"] = "an event needs anonymous_id, user_id, email or phone"
    elif not (
        item.user_id or item.email or item.phone or item.traits.get("email") or item.traits.get("phone")
    ):
        errors["user_id"] = "identify needs user_id, email or phone"
    return errors


def error_fields(exc: PydanticValidationError) -> dict[str, str]:
    """Pydantic errors as {"dotted.field.path": "message"} (the API's 422 `fields` shape)."""
    out: dict[str, str] = {}
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err.get("loc", ())) or "body"
        msg = err.get("msg", "invalid")
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        out.setdefault(loc, msg)
    return out


# --- Responses


class ItemResultOut(Schema):
    index: int
    status: Literal["ok", "duplicate", "error"]
    type: str | None = None
    event_id: str | None = None
    customer_id: int | None = None
    errors: dict[str, str] | None = None


class BatchOut(Schema):
    received: int
    accepted: int
    duplicates: int
    failed: int
    results: list[ItemResultOut]


class TrackOut(Schema):
    status: Literal["ok", "duplicate"]
    event_id: str
    customer_id: int | None = None


class IdentifyOut(Schema):
    customer_id: int
    created: bool
    events_moved: int
    attached: list[str]


def inline_json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with every $ref inlined, for an operation's hand-written requestBody
    (those endpoints read the body themselves: size check before parsing, per-item validation)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if ref and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    return resolve(schema)
