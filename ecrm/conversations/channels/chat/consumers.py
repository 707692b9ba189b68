"""WebSocket consumers of live chat.

`VisitorChatConsumer` (/ws/chat/): the widget's socket. The first frame must be
`{"type": "auth", "token": <signed session token>}`; the conversation is the one whose thread key the
token names, never an id the browser sends. It forwards from the group `conversation.<id>` only what
a visitor may see: messages in and out (re-read from the database, notes excluded), agent typing and
read receipts.

`AgentChatConsumer` (/ws/chat/agents/): a console page's socket (static/ecrm/chat/agent.js). While it
is open and pinged the agent counts as online for the chat widget; it also carries the agent's typing
to the visitor and lets an agent watch a conversation's live events (permission checked).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from ecrm.core.consumers import DirectDispatchMixin
from ecrm.core.exceptions import EcrmError
from ecrm.core.permissions import has_perm

from ...services import conversation_group
from . import services
from .identity import BadToken, ChatSession, verify_session
from .presence import drop_agent, touch_agent

AUTH_TIMEOUT = 10  # seconds a socket may stay open without authenticating
CLOSE_UNAUTHORISED = 4401
CLOSE_FORBIDDEN_ORIGIN = 4403
TYPING_MIN_INTERVAL = 1.0  # seconds between two typing events a visitor may cause
MAX_FRAME_CHARS = 64_000  # anything bigger is not a chat message: refuse before parsing further


def _origin(scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"origin":
            return value.decode("latin-1")
    return ""


class VisitorChatConsumer(DirectDispatchMixin, AsyncJsonWebsocketConsumer):
    session: ChatSession | None = None
    conversation_id: int | None = None
    inbox = None  # loaded once when the visitor authenticates
    _last_typing = 0.0

    async def connect(self):
        self._own_messages: set[int] = set()
        await self.accept()
        self._auth_timer = asyncio.get_running_loop().call_later(AUTH_TIMEOUT, self._auth_timeout)

    def _auth_timeout(self):
        if self.session is None:
            asyncio.ensure_future(
                self._refuse("auth_timeout", "Authenticate within 10 seconds.", CLOSE_UNAUTHORISED)
            )

    async def _refuse(self, code: str, message: str, close_code: int):
        await self.send_json({"type": "error", "code": code, "message": message})
        await self.close(code=close_code)

    async def disconnect(self, code):
        timer = getattr(self, "_auth_timer", None)
        if timer is not None:
            timer.cancel()
        if self.conversation_id is not None:
            await self.channel_layer.group_discard(
                conversation_group(self.conversation_id), self.channel_name
            )

    async def websocket_receive(self, message):
        text = message.get("text")
        if text is not None and len(text) > MAX_FRAME_CHARS:
            await self.send_json({"type": "error", "code": "too_long", "message": "The message is too long."})
            return
        await super().websocket_receive(message)

    @classmethod
    async def decode_json(cls, text_data):
        try:
            return await super().decode_json(text_data)
        except ValueError:
            return {"type": "__malformed__"}

    async def receive_json(self, content: Any, **kwargs):
        if not isinstance(content, dict):
            content = {"type": "__malformed__"}
        kind = content.get("type")
        if self.session is None:
            if kind != "auth":
                await self._refuse("unauthenticated", "Send the session token first.", CLOSE_UNAUTHORISED)
                return
            await self._authenticate(content.get("token"))
            return
        handler = {"message": self._on_message, "typing": self._on_typing, "seen": self._on_seen,
                   "ping": self._on_ping}.get(kind)  # fmt: skip
        if handler is None:
            await self.send_json({"type": "error", "code": "bad_frame", "message": "Unknown frame type."})
            return
        await handler(content)

    async def _authenticate(self, token: Any):
        try:
            session = verify_session(token if isinstance(token, str) else "")
            hello = await database_sync_to_async(self._hello)(session)
        except BadToken as exc:
            await self._refuse(exc.code, exc.message, CLOSE_UNAUTHORISED)
            return
        except EcrmError as exc:  # the inbox was switched off or removed
            await self._refuse(exc.code, exc.message, CLOSE_UNAUTHORISED)
            return
        if hello is None:
            await self._refuse("forbidden_origin", "This site may not use this chat.", CLOSE_FORBIDDEN_ORIGIN)
            return
        self.session = session
        self._auth_timer.cancel()
        if hello["conversation"] is not None:
            await self._join(hello["conversation"])
        await self.send_json(hello)

    def _hello(self, session: ChatSession) -> dict[str, Any] | None:
        inbox = self.inbox = services.chat_inbox(session.inbox_id)
        if not services.origin_allowed(services.chat_config(inbox), _origin(self.scope) or None):
            return None
        conversation, messages = services.visitor_history(session)
        return {"type": "hello", "conversation": conversation.pk if conversation else None, "messages": messages,
                **{k: v for k, v in services.public_config(inbox).items() if k in ("online", "title", "greeting")}}  # fmt: skip

    async def _join(self, conversation_id: int):
        if self.conversation_id != conversation_id:
            self.conversation_id = conversation_id
            await self.channel_layer.group_add(conversation_group(conversation_id), self.channel_name)

    async def _on_message(self, content: dict):
        client_id = content.get("client_id")
        try:
            result = await database_sync_to_async(services.do_post_visitor_message)(
                session=self.session,
                body=content.get("body"),
                client_id=client_id,
                page=content.get("page", ""),
                resend=content.get("resend") is True,
                inbox=self.inbox,
            )
        except services.RateLimited as exc:
            await self.send_json({"type": "error", "code": exc.code, "message": exc.message,
                                  "retry_after": exc.retry_after, "client_id": client_id})  # fmt: skip
            return
        except EcrmError as exc:
            await self.send_json({"type": "error", "code": exc.code, "message": exc.message, "fields": exc.fields,
                                  "client_id": client_id})  # fmt: skip
            return
        await self._join(result.conversation.pk)
        # The consumer handles one event at a time, so the group's echo of this message is processed
        # after this handler: remember the id and skip the echo (other tabs still get it).
        self._own_messages.add(result.message.pk)
        message = services.visitor_message(result.message)  # an inbound message: no author to load
        await self.send_json({"type": "ack", "client_id": client_id, "conversation": result.conversation.pk,
                              "duplicate": result.duplicate, "message": message})  # fmt: skip

    async def _on_typing(self, content: dict):
        now = time.monotonic()
        if self.conversation_id is None or now - self._last_typing < TYPING_MIN_INTERVAL:
            return
        self._last_typing = now
        payload = {"type": "typing", "conversation": self.conversation_id, "by": "visitor", "who": "visitor"}
        await self.channel_layer.group_send(
            conversation_group(self.conversation_id), {"type": "live.update", "payload": payload}
        )

    async def _on_seen(self, content: dict):
        await database_sync_to_async(services.do_mark_seen_by_visitor)(session=self.session)

    async def _on_ping(self, content: dict):
        await self.send_json({"type": "pong"})

    # --- events from the conversation's group: forward only what the visitor may see -------------

    async def live_update(self, event: dict):
        payload = event.get("payload") or {}
        kind = payload.get("type")
        if self.conversation_id is None or payload.get("conversation") != self.conversation_id:
            return
        if kind == "message.created" and payload.get("direction") in ("in", "out"):
            if payload.get("message") in self._own_messages:
                self._own_messages.discard(payload.get("message"))
                return
            message = payload.get("visible")
            if not (isinstance(message, dict) and message.get("id") == payload.get("message")):
                # an event from elsewhere without the visitor's shape: read the message (a note
                # never passes: only inbound and outbound messages of this conversation are read)
                message = await database_sync_to_async(services.visitor_visible_message)(
                    self.conversation_id, payload.get("message")
                )
            if message is not None:
                await self.send_json({"type": "message", "message": message})
        elif kind == "typing" and "visitor" not in (payload.get("by"), payload.get("who")):
            await self.send_json({"type": "typing", "name": str(payload.get("name") or "")[:60]})
        elif kind == "messages.read":
            await self.send_json({"type": "read", "at": payload.get("at")})


class AgentChatConsumer(DirectDispatchMixin, AsyncJsonWebsocketConsumer):
    """An agent's console socket for chat: presence, typing, watching conversations."""

    async def connect(self):
        user = self.scope.get("user")
        if (
            user is None
            or not user.is_authenticated
            or not await database_sync_to_async(has_perm)(user, "conversations.reply")
        ):
            await self.close(code=CLOSE_UNAUTHORISED)
            return
        self.user = user
        self.watching: set[int] = set()
        await self.accept()
        await database_sync_to_async(touch_agent)(user.pk, self.channel_name)

    async def disconnect(self, code):
        if getattr(self, "user", None) is None:
            return
        for conversation_id in self.watching:
            await self.channel_layer.group_discard(conversation_group(conversation_id), self.channel_name)
        await database_sync_to_async(drop_agent)(self.user.pk, self.channel_name)

    async def receive_json(self, content: Any, **kwargs):
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        if kind == "ping":
            await database_sync_to_async(touch_agent)(self.user.pk, self.channel_name)
            await self.send_json({"type": "pong"})
        elif kind in ("typing", "watch"):
            conversation_id = content.get("conversation")
            if not isinstance(conversation_id, int) or not await database_sync_to_async(self._may_see)(
                conversation_id
            ):
                await self.send_json(
                    {"type": "error", "code": "not_found", "message": "No such conversation."}
                )
                return
            if kind == "typing":
                payload = {"type": "typing", "conversation": conversation_id, "by": "agent",
                           "name": self.user.first_name or self.user.username}  # fmt: skip
                await self.channel_layer.group_send(
                    conversation_group(conversation_id), {"type": "live.update", "payload": payload}
                )
            elif conversation_id not in self.watching:
                self.watching.add(conversation_id)
                await self.channel_layer.group_add(conversation_group(conversation_id), self.channel_name)
                await self.send_json({"type": "watching", "conversation": conversation_id})

    def _may_see(self, conversation_id: int) -> bool:
        from ...selectors import access_conversation_for_user

        try:
            access_conversation_for_user(self.user, conversation_id)
        except EcrmError:
            return False
        return True

    async def live_update(self, event: dict):
        payload = event.get("payload") or {}
        if payload.get("conversation") in self.watching and not (
            payload.get("type") == "typing" and payload.get("by") == "agent"
        ):
            await self.send_json(payload)
