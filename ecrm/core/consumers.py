"""Live updates over WebSocket: a signed-in console user joins their personal group and the
groups of the objects they open; services publish after commit with `publish`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def publish(group: str, payload: dict) -> None:
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(group, {"type": "live.update", "payload": payload})


def publish_each(items: Iterable[tuple[str, dict]]) -> None:
    """(group, payload) pairs, all in one hop to the event loop (not one per group: on a busy chat
    server each hop from a worker thread waits its turn on the loop)."""
    layer = get_channel_layer()
    items = list(items)
    if layer is None or not items:
        return

    async def send_all() -> None:
        await asyncio.gather(
            *(
                layer.group_send(group, {"type": "live.update", "payload": payload})
                for group, payload in items
            )
        )

    async_to_sync(send_all)()


class DirectDispatchMixin:
    """Run a consumer's handlers without Channels' per-message `aclose_old_connections()`.

    Channels (4.2+) calls `sync_to_async(close_old_connections)` before every handler, on the one
    thread that all `database_sync_to_async` work of every socket shares. A handler that touches no
    database (forwarding a live update, a ping, a typing event) then waits behind the whole queue of
    other sockets' database work: on a busy chat server that added up to 230 ms before an agent's
    socket could forward a message (bench/cc_chat.py). Our consumers reach the database only through
    `database_sync_to_async`, which closes stale connections itself, before and after each call, on
    the thread that runs it; so the extra hop does nothing for them but wait."""

    async def dispatch(self, message):
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)


class LiveUpdatesConsumer(DirectDispatchMixin, AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.groups_joined = [user_group(user.pk), "console"]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def live_update(self, event):
        await self.send_json(event["payload"])
