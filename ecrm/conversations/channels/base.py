"""The one base class every channel adapter implements, and the registry of adapters by kind."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from ecrm.core.exceptions import ValidationFailed

if TYPE_CHECKING:
    from ..models import Message


class DeliveryError(Exception):
    """Sending failed. `permanent` errors are not retried (bad address); others are (server down)."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


class NoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChannelAdapter:
    """A channel kind: its validated inbox settings and, if it can, how to send a reply.

    Inbound messages reach `services.receive_inbound` from the adapter's own entry point (an email
    pipe or poller, a WebSocket consumer, a webhook endpoint); outbound replies go through `send`,
    which the `deliver_message` task calls after the reply is committed.
    """

    kind: ClassVar[str]
    config_schema: ClassVar[type[BaseModel]] = NoConfig
    can_reply: ClassVar[bool] = False  # False: replies are notes to self (e.g. a call log)

    def validate_config(self, data: dict[str, Any] | None) -> dict[str, Any]:
        """Return the cleaned settings or raise ValidationFailed with one entry per bad field."""
        try:
            return self.config_schema.model_validate(data or {}).model_dump(mode="json")
        except ValidationError as exc:
            fields = {"config." + ".".join(str(p) for p in e["loc"]): e["msg"] for e in exc.errors()}
            raise ValidationFailed("The channel settings are not valid.", fields=fields) from exc

    def config(self, inbox) -> BaseModel:
        return self.config_schema.model_validate(inbox.config or {})

    def send(self, message: Message) -> dict[str, Any]:
        """Deliver an outbound message; return metadata to store on it (e.g. the Message-ID)."""
        raise DeliveryError(f"the {self.kind} channel cannot send replies", permanent=True)

    def delivered_on_commit(self, conversation) -> dict[str, Any] | None:
        """Metadata when a reply in this conversation is delivered by the live update published at
        its commit, so no delivery job is needed (the reply is stored as sent); None otherwise."""
        return None


_ADAPTERS: dict[str, ChannelAdapter] = {}


def register_adapter(adapter_cls: type[ChannelAdapter]) -> type[ChannelAdapter]:
    _ADAPTERS[adapter_cls.kind] = adapter_cls()
    return adapter_cls


def get_adapter(kind: str) -> ChannelAdapter:
    try:
        return _ADAPTERS[kind]
    except KeyError:
        raise ValidationFailed(f"Unknown channel {kind!r}.", fields={"kind": "unknown channel"}) from None


def adapters() -> dict[str, ChannelAdapter]:
    return dict(_ADAPTERS)
