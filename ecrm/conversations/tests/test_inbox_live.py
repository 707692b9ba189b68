"""The inbox WebSocket: an agent's socket joins only the groups they may see, so another team's
events never reach it; the conversation group is joined only after the visibility check; agent
typing is published to the conversation for the chat widget."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator

from ecrm.conversations.consumers import InboxConsumer
from ecrm.conversations.models import Inbox
from ecrm.conversations.services import Inbound, do_set_status, receive_inbound
from ecrm.core.consumers import publish
from ecrm.core.models import Team

pytestmark = pytest.mark.django_db(transaction=True)


class WebsocketCommunicator(ApplicationCommunicator):
    """channels.testing's communicator, without importing channels.testing (it needs daphne)."""

    def __init__(self, application, path):
        path, _, query = path.partition("?")
        super().__init__(application, {"type": "websocket", "path": path, "query_string": query.encode(),
                                       "headers": [], "subprotocols": []})  # fmt: skip

    async def connect(self, timeout=2):
        await self.send_input({"type": "websocket.connect"})
        response = await self.receive_output(timeout)
        if response["type"] == "websocket.close":
            return False, response.get("code", 1000)
        return True, response.get("subprotocol")

    async def send_json_to(self, data):
        await self.send_input({"type": "websocket.receive", "text": json.dumps(data)})

    async def receive_json_from(self, timeout=2):
        response = await self.receive_output(timeout)
        return json.loads(response["text"])

    async def disconnect(self, code=1000, timeout=2):
        await self.send_input({"type": "websocket.disconnect", "code": code})
        await self.wait(timeout)


@pytest.fixture
def convs(cast):
    cn, en = Team.objects.get(name="Service CN"), Team.objects.get(name="Service EN")
    out = {}
    for key, team in (("cn", cn), ("en", en)):
        inbox = Inbox.objects.create(name=f"{key} chat", kind="chat", team=team)
        out[key] = receive_inbound(Inbound(inbox=inbox, identities=[("email", f"{key}@example.com")],
                                           body_text=f"hello {key}")).conversation  # fmt: skip
    return out


async def _connect(user, query=""):
    comm = WebsocketCommunicator(InboxConsumer.as_asgi(), "/ws/inbox/" + (f"?{query}" if query else ""))
    comm.scope["user"] = user
    connected, code = await comm.connect()
    return comm, connected, code


async def _drain(comm, timeout=0.3):
    out = []
    while not await comm.receive_nothing(timeout):
        out.append(await comm.receive_json_from())
    return out


def test_agent_socket_never_receives_another_teams_events(cast, convs):
    async def scenario():
        comm, connected, _ = await _connect(cast["agent_li"])
        assert connected
        hello = await comm.receive_json_from()
        cn_team = convs["cn"].team_id
        assert sorted(hello["groups"]) == sorted(
            [f"user.{cast['agent_li'].pk}", "conversations.unteamed", f"conversations.team.{cn_team}"]
        )
        await asyncio.to_thread(do_set_status, conversation=convs["en"], actor=cast["agent_bob"],
                                status="resolved")  # fmt: skip
        await asyncio.to_thread(do_set_status, conversation=convs["cn"], actor=cast["agent_li"],
                                status="pending")  # fmt: skip
        events = await _drain(comm)
        await comm.disconnect()
        return events

    events = async_to_sync(scenario)()
    assert [(e["type"], e["conversation"]) for e in events] == [("conversation.updated", convs["cn"].pk)]


def test_manager_socket_joins_all_and_receives_every_team(cast, convs):
    async def scenario():
        comm, connected, _ = await _connect(cast["manager"])
        hello = await comm.receive_json_from()
        await asyncio.to_thread(
            do_set_status, conversation=convs["en"], actor=cast["manager"], status="pending"
        )
        events = await _drain(comm)
        await comm.disconnect()
        return hello, events

    hello, events = async_to_sync(scenario)()
    assert sorted(hello["groups"]) == sorted([f"user.{cast['manager'].pk}", "conversations.all"])
    assert [(e["type"], e["conversation"]) for e in events] == [("conversation.updated", convs["en"].pk)]


def test_conversation_group_is_joined_only_when_visible(cast, convs):
    async def scenario():
        comm, connected, _ = await _connect(cast["agent_li"], f"conversation={convs['en'].pk}")
        hello = await comm.receive_json_from()
        # publishing on the other team's conversation group reaches nobody on this socket
        await asyncio.to_thread(
            publish, f"conversation.{convs['en'].pk}", {"type": "typing", "who": "visitor"}
        )
        events = await _drain(comm)
        await comm.disconnect()
        return hello, events

    hello, events = async_to_sync(scenario)()
    assert f"conversation.{convs['en'].pk}" not in hello["groups"]
    assert events == []


def test_agent_typing_is_published_to_the_conversation(cast, convs):
    conv = convs["cn"]

    async def scenario():
        agent, _, _ = await _connect(cast["agent_li"], f"conversation={conv.pk}")
        watcher, _, _ = await _connect(cast["manager"], f"conversation={conv.pk}")
        await agent.receive_json_from()
        await watcher.receive_json_from()
        await agent.send_json_to({"type": "typing"})
        await agent.send_json_to({"type": "typing"})  # throttled: one event per 1.5 s
        events = await _drain(watcher)
        await agent.disconnect()
        await watcher.disconnect()
        return events

    events = async_to_sync(scenario)()
    assert events == [{"type": "typing", "conversation": conv.pk, "who": "agent"}]


def test_signed_out_and_nobody_are_refused(cast, convs):
    from django.contrib.auth.models import AnonymousUser

    async def scenario():
        anon = await _connect(AnonymousUser())
        nobody = await _connect(cast["nobody"])
        return anon[1:], nobody[1:]

    anon, nobody = async_to_sync(scenario)()
    assert anon == (False, 4401)
    assert nobody == (False, 4403)


def test_a_live_update_is_forwarded_while_the_database_thread_is_busy(cast, convs):
    """Forwarding an event touches no database, so it must not queue behind other sockets' database
    work on the one shared thread (Channels' stock dispatch did: bench/cc_chat.py's tail)."""
    from asgiref.sync import sync_to_async
    from channels.layers import get_channel_layer

    release = threading.Event()

    async def scenario():
        comm, connected, _ = await _connect(cast["manager"])
        assert connected
        await comm.receive_json_from()  # hello
        # another socket's slow database call holds the shared thread-sensitive executor
        busy = asyncio.ensure_future(sync_to_async(release.wait, thread_sensitive=True)(5))
        await asyncio.sleep(0.05)
        payload = {"type": "message.created", "conversation": convs["en"].pk, "message": 1}
        await get_channel_layer().group_send("conversations.all", {"type": "live.update", "payload": payload})
        try:
            received = await comm.receive_json_from(timeout=1)
        finally:
            release.set()
            await busy
        await comm.disconnect()
        return received

    assert async_to_sync(scenario)()["type"] == "message.created"
