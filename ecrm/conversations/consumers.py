"""The console inbox's WebSocket (`/ws/inbox/`): a signed-in agent joins only the groups they may
see — their teams' inbox groups, unteamed conversations and their own user group; managers join
`conversations.all` instead. With `?conversation=<id>` the socket also joins that conversation's
group (new messages, delivery and read states, typing) after the visibility check, and the agent's
typing is published there for the chat widget."""

from __future__ import annotations

import time
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from ecrm.core.consumers import DirectDispatchMixin, publish
from ecrm.core.permissions import has_perm

TYPING_EVERY_SECONDS = 1.5  # at most one typing event per socket per this many seconds


@database_sync_to_async
def _groups_for(user, conversation_id: int | None) -> tuple[list[str], int | None]:
    from .models import Conversation
    from .selectors import can_see_conversation, user_team_ids
    from .services import conversation_group, inbox_group

    if not has_perm(user, "conversations.view"):
        return [], None
    groups = [f"user.{user.pk}"]
    if has_perm(user, "conversations.view_all"):
        groups.append("conversations.all")
    else:
        groups.append(inbox_group(None))
        groups.extend(inbox_group(team_id) for team_id in user_team_ids(user))
    joined_conversation = None
    if conversation_id:
        conv = Conversation.objects.filter(pk=conversation_id).first()
        if conv is not None and can_see_conversation(user, conv):
            groups.append(conversation_group(conv.pk))
            joined_conversation = conv.pk
    return groups, joined_conversation


@database_sync_to_async
def _publish_typing(conversation_id: int) -> None:
    from .services import conversation_group

    publish(
        conversation_group(conversation_id),
        {"type": "typing", "conversation": conversation_id, "who": "agent"},
    )


class InboxConsumer(DirectDispatchMixin, AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode())
        raw = (query.get("conversation") or [""])[0]
        groups, conversation_id = await _groups_for(user, int(raw) if raw.isdigit() else None)
        if not groups:
            await self.close(code=4403)
            return
        self.groups_joined = groups
        self.conversation_id = conversation_id
        self.can_reply = has_perm(user, "conversations.reply")
        self.last_typing = 0.0
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello", "groups": groups})

    async def disconnect(self, code):
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        if not isinstance(content, dict) or content.get("type") != "typing":
            return
        if not self.conversation_id or not self.can_reply:
            return
        now = time.monotonic()
        if now - self.last_typing < TYPING_EVERY_SECONDS:
            return
        self.last_typing = now
        await _publish_typing(self.conversation_id)

    async def live_update(self, event):
        await self.send_json(event["payload"])
