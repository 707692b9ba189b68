"""Live updates over WebSocket: a signed-in console user joins their personal group and the
groups of the objects they open; services publish after commit with `publish`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def publish(group: str, payload: dict) -> None:
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(group, {"type": "live.update", "payload": payload})


def publish_many(groups: Iterable[str], payload: dict) -> None:
    """The same payload to several groups in one hop to the event loop (not one per group: on a busy
    chat server each hop from a worker thread waits its turn on the loop)."""
    layer = get_channel_layer()
    groups = list(groups)
    if layer is None or not groups:
        return
    message = {"type": "live.update", "payload": payload}

    async def send_all() -> None:
        await asyncio.gather(*(layer.group_send(group, message) for group in groups))

    async_to_sync(send_all)()


class LiveUpdatesConsumer(AsyncJsonWebsocketConsumer):
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
