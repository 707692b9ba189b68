"""The visitor's chat socket (/ws/chat/) and the agents' chat socket (/ws/chat/agents/), driven with
channels' WebsocketCommunicator through the real ASGI application: signed sessions, the common inbound
path, live replies, notes never forwarded, floods and oversize messages refused, visitors isolated."""

from __future__ import annotations

import json
import uuid
from unittest import mock

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from channels.db import database_sync_to_async
from django.core.cache import cache

from config.asgi import application
from ecrm.conversations.channels.chat.consumers import AgentChatConsumer
from ecrm.conversations.channels.chat.identity import ChatSession, sign_customer, sign_session
from ecrm.conversations.channels.chat.presence import online_user_ids
from ecrm.conversations.channels.chat.services import do_start_session
from ecrm.conversations.models import Conversation, Inbox, Message, MessageDirection
from ecrm.conversations.services import do_add_note, do_mark_read, do_send_reply
from ecrm.core.models import Team
from ecrm.customers.models import Customer, Identity
from ecrm.ingest.models import Event

pytestmark = pytest.mark.django_db(transaction=True)


class WebsocketCommunicator(ApplicationCommunicator):
    """channels.testing.WebsocketCommunicator, minus the package import that needs daphne (not a
    dependency of this project): the same methods, on asgiref's ApplicationCommunicator."""

    def __init__(self, app, path, headers=None):
        self.scope = {"type": "websocket", "path": path, "query_string": b"", "headers": headers or [],
                      "subprotocols": []}  # fmt: skip
        super().__init__(app, self.scope)

    async def send_input(self, message):
        with mock.patch("channels.db.close_old_connections", lambda: None):  # the test owns the DB connection
            return await super().send_input(message)

    async def receive_output(self, timeout=1):
        with mock.patch("channels.db.close_old_connections", lambda: None):
            return await super().receive_output(timeout)

    async def connect(self, timeout=1):
        await self.send_input({"type": "websocket.connect"})
        response = await self.receive_output(timeout)
        if response["type"] == "websocket.close":
            return False, response.get("code", 1000)
        return True, None

    async def send_json_to(self, data):
        await self.send_input({"type": "websocket.receive", "text": json.dumps(data)})

    async def receive_json_from(self, timeout=1):
        response = await self.receive_output(timeout)
        assert response["type"] == "websocket.send", response
        return json.loads(response["text"])

    async def disconnect(self, code=1000, timeout=1):
        await self.send_input({"type": "websocket.disconnect", "code": code})
        await self.wait(timeout)


ORIGIN = (b"origin", b"http://shop.example")


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def inbox(cast):
    return Inbox.objects.create(
        name="Chat CN", kind="chat", team=Team.objects.get(name="Service CN"),
        config={"rate_limit_messages": 10, "rate_limit_window_seconds": 10, "max_message_chars": 4000},
    )  # fmt: skip


def run(coro_fn):
    """Run an async scenario from a sync test (no pytest-asyncio here)."""
    return async_to_sync(coro_fn)()


def token_for(inbox, **kw) -> str:
    _, token = do_start_session(inbox=inbox, anonymous_id=kw.pop("aid", f"aid-{uuid.uuid4()}"), **kw)
    return token


async def visitor(token: str, origin=ORIGIN):
    comm = WebsocketCommunicator(application, "/ws/chat/", headers=[origin])
    connected, _ = await comm.connect()
    assert connected
    await comm.send_json_to({"type": "auth", "token": token})
    return comm


async def say(comm, body, client_id=None):
    await comm.send_json_to({"type": "message", "body": body, "client_id": client_id or uuid.uuid4().hex})
    return await comm.receive_json_from(timeout=5)


def test_a_visitor_chats_and_the_message_lands_on_the_customer_with_their_browsing(inbox):
    aid = "3f1b9a2e-visitor"
    Event.objects.create(anonymous_id=aid, type="page_view", name="/tea/longjing", occurred_at="2026-01-01T10:00Z",
                         received_at="2026-01-01T10:00Z")  # fmt: skip
    token = token_for(inbox, aid=aid, name="Lina", email="Lina.Wang@Example.cn")

    async def scenario():
        comm = await visitor(token)
        hello = await comm.receive_json_from()
        assert hello["type"] == "hello" and hello["conversation"] is None and hello["messages"] == []
        ack = await say(comm, "  Is the Longjing in stock?  ", client_id="c1")
        await comm.disconnect()
        return ack

    ack = run(scenario)
    conv = Conversation.objects.get()
    assert ack["type"] == "ack" and ack["client_id"] == "c1" and ack["conversation"] == conv.pk
    assert ack["message"]["body"] == "Is the Longjing in stock?" and ack["message"]["direction"] == "in"
    assert (conv.channel, conv.team.name, conv.visitor_id, conv.contact, conv.subject) == (
        "chat", "Service CN", aid, "lina.wang@example.cn", "Is the Longjing in stock?")  # fmt: skip
    assert conv.thread_key.startswith("chat:")
    assert sorted(Identity.objects.filter(customer=conv.customer).values_list("kind", "value")) == [
        ("anonymous", aid), ("email", "lina.wang@example.cn")]  # fmt: skip
    assert conv.customer.first_name == "Lina"
    assert list(Event.objects.values_list("customer_id", flat=True)) == [conv.customer_id]  # what they viewed
    assert Message.objects.get().metadata["chat_session"] == conv.thread_key.removeprefix("chat:")


def test_agent_replies_typing_and_read_reach_the_visitor_live_but_notes_never(inbox, cast):
    token = token_for(inbox, name="Lina")
    li = cast["agent_li"]

    async def scenario():
        comm = await visitor(token)
        await comm.receive_json_from()
        ack = await say(comm, "Hello?")
        conv = await database_sync_to_async(Conversation.objects.get)(pk=ack["conversation"])
        await database_sync_to_async(do_add_note)(conversation=conv, actor=li, body="internal: VIP, be nice")
        assert await comm.receive_nothing(timeout=0.3)  # the note's event is dropped, not forwarded
        await database_sync_to_async(do_mark_read)(conversation=conv, actor=li)
        read = await comm.receive_json_from(timeout=5)
        agent = WebsocketCommunicator(AgentChatConsumer.as_asgi(), "/ws/chat/agents/")
        agent.scope["user"] = li
        assert (await agent.connect())[0]
        await agent.send_json_to({"type": "typing", "conversation": conv.pk})
        typing = await comm.receive_json_from(timeout=5)
        await database_sync_to_async(do_send_reply)(
            conversation=conv, actor=li, body_text="Yes, 12 tins left."
        )
        reply = await comm.receive_json_from(timeout=5)
        rest = []
        while not await comm.receive_nothing(timeout=0.3):
            rest.append(await comm.receive_json_from())
        await agent.disconnect()
        await comm.disconnect()
        return read, typing, reply, rest

    read, typing, reply, rest = run(scenario)
    assert read["type"] == "read"
    assert typing == {"type": "typing", "name": li.first_name or li.username}
    assert reply["type"] == "message"
    assert (reply["message"]["direction"], reply["message"]["body"]) == ("out", "Yes, 12 tins left.")
    assert reply["message"]["author"] == (li.first_name or li.username)
    assert all("internal" not in str(frame) for frame in [read, typing, reply, *rest])
    assert Message.objects.filter(direction=MessageDirection.NOTE).count() == 1


def test_a_reply_reaches_the_visitor_without_a_database_read(inbox, cast):
    """The reply's event carries the visitor's shape of the message: the widget's socket forwards it
    without queueing a read on the database thread every chat socket shares."""
    token = token_for(inbox, name="Lina")

    def no_read(*args):
        raise AssertionError("the socket read the message from the database")

    async def scenario():
        comm = await visitor(token)
        await comm.receive_json_from()
        ack = await say(comm, "Hello?")
        conv = await database_sync_to_async(Conversation.objects.get)(pk=ack["conversation"])
        with mock.patch("ecrm.conversations.channels.chat.services.visitor_visible_message", no_read):
            await database_sync_to_async(do_send_reply)(
                conversation=conv, actor=cast["agent_li"], body_text="Yes."
            )
            reply = await comm.receive_json_from(timeout=5)
        await comm.disconnect()
        return reply

    reply = run(scenario)
    assert (reply["type"], reply["message"]["direction"], reply["message"]["body"]) == (
        "message",
        "out",
        "Yes.",
    )


def test_an_event_without_the_visitors_shape_is_read_and_a_note_never_passes(inbox, cast):
    """A message event that does not carry the visitor's shape (or carries another message's) is read
    from the database, where only inbound and outbound messages qualify: a note claimed as "out"
    stays inside."""
    from channels.layers import get_channel_layer

    from ecrm.conversations.services import conversation_group

    token = token_for(inbox, name="Lina")

    async def scenario():
        comm = await visitor(token)
        await comm.receive_json_from()
        ack = await say(comm, "Hello?")
        conv = await database_sync_to_async(Conversation.objects.get)(pk=ack["conversation"])
        note = await database_sync_to_async(do_add_note)(
            conversation=conv, actor=cast["agent_li"], body="secret"
        )
        assert await comm.receive_nothing(timeout=0.3)
        layer = get_channel_layer()
        forged = {"type": "message.created", "conversation": conv.pk, "message": note.pk, "direction": "out"}
        for payload in (forged, {**forged, "visible": {"id": ack["message"]["id"], "body": "not this one"}}):
            await layer.group_send(conversation_group(conv.pk), {"type": "live.update", "payload": payload})
        quiet = await comm.receive_nothing(timeout=0.5)
        await comm.disconnect()
        return quiet

    assert run(scenario)


def test_reconnecting_shows_the_history_without_notes_and_a_resend_is_stored_once(inbox, cast):
    token = token_for(inbox)

    async def scenario():
        comm = await visitor(token)
        await comm.receive_json_from()
        first = await say(comm, "first", client_id="same")
        conv = await database_sync_to_async(Conversation.objects.get)(pk=first["conversation"])
        await database_sync_to_async(do_add_note)(
            conversation=conv, actor=cast["agent_li"], body="secret note"
        )
        await database_sync_to_async(do_send_reply)(
            conversation=conv, actor=cast["agent_li"], body_text="answer"
        )
        await comm.disconnect()
        again = await visitor(token)
        hello = await again.receive_json_from()
        await again.send_json_to({"type": "message", "body": "first", "client_id": "same", "resend": True})
        resend = await again.receive_json_from(timeout=5)
        unflagged = await say(again, "first", client_id="same")  # stored once even without the flag
        await again.disconnect()
        return first, hello, resend, unflagged

    first, hello, resend, unflagged = run(scenario)
    assert [(m["direction"], m["body"]) for m in hello["messages"]] == [("in", "first"), ("out", "answer")]
    assert resend["type"] == "ack" and resend["duplicate"] is True
    assert resend["message"]["id"] == first["message"]["id"] == unflagged["message"]["id"]
    assert unflagged["duplicate"] is True
    assert Message.objects.filter(direction=MessageDirection.INBOUND).count() == 1


def test_a_flood_is_refused_with_a_clear_error_and_nothing_more_is_stored(inbox):
    token = token_for(inbox)

    async def scenario():
        comm = await visitor(token)
        await comm.receive_json_from()
        frames = [await say(comm, f"spam {i}") for i in range(13)]
        await comm.disconnect()
        return frames

    frames = run(scenario)
    assert [f["type"] for f in frames] == ["ack"] * 10 + ["error"] * 3
    assert {f["code"] for f in frames[10:]} == {"rate_limited"}
    assert 1 <= frames[10]["retry_after"] <= 10 and "too fast" in frames[10]["message"]
    assert Message.objects.count() == 10


def test_a_message_over_the_size_limit_is_refused_and_not_stored(inbox):
    token = token_for(inbox)

    async def scenario():
        comm = await visitor(token)
        await comm.receive_json_from()
        too_long = await say(comm, "x" * 4001)
        empty = await say(comm, "   ")
        ok = await say(comm, "y" * 4000)
        await comm.disconnect()
        return too_long, empty, ok

    too_long, empty, ok = run(scenario)
    assert (too_long["type"], too_long["code"]) == ("error", "too_long")
    assert "4001" in too_long["message"] and "4000" in too_long["message"]
    assert (empty["type"], empty["fields"]) == ("error", {"body": "required"})
    assert ok["type"] == "ack"
    assert list(Message.objects.values_list("body_text", flat=True)) == ["y" * 4000]


def test_a_bad_or_missing_token_is_refused_and_nothing_is_stored(inbox):
    forged = sign_session(ChatSession(session_id="s", inbox_id=inbox.pk))[:-3] + "abc"

    async def scenario():
        results = []
        for first_frame in ({"type": "auth", "token": forged}, {"type": "auth", "token": 42},
                            {"type": "message", "body": "hi", "client_id": "x"}):  # fmt: skip
            comm = WebsocketCommunicator(application, "/ws/chat/", headers=[ORIGIN])
            await comm.connect()
            await comm.send_json_to(first_frame)
            error = await comm.receive_json_from()
            closed = await comm.receive_output()
            results.append((error["code"], closed["code"]))
        return results

    assert run(scenario) == [("bad_token", 4401), ("bad_token", 4401), ("unauthenticated", 4401)]
    assert Conversation.objects.count() == 0 and Message.objects.count() == 0


def test_two_visitors_are_isolated(inbox, cast):
    a, b = token_for(inbox, name="A"), token_for(inbox, name="B")

    async def scenario():
        va, vb = await visitor(a), await visitor(b)
        await va.receive_json_from()
        await vb.receive_json_from()
        ack_a = await say(va, "I am A")
        ack_b = await say(vb, "I am B")
        conv_a = await database_sync_to_async(Conversation.objects.get)(pk=ack_a["conversation"])
        await database_sync_to_async(do_send_reply)(
            conversation=conv_a, actor=cast["agent_li"], body_text="for A only"
        )
        got_a = await va.receive_json_from(timeout=5)
        b_quiet = await vb.receive_nothing(timeout=0.3)
        await va.disconnect()
        await vb.disconnect()
        hello_b = await visitor(b)
        history_b = (await hello_b.receive_json_from())["messages"]
        await hello_b.disconnect()
        return ack_a, ack_b, got_a, b_quiet, history_b

    ack_a, ack_b, got_a, b_quiet, history_b = run(scenario)
    assert ack_a["conversation"] != ack_b["conversation"]
    assert got_a["message"]["body"] == "for A only" and b_quiet
    assert [m["body"] for m in history_b] == ["I am B"]
    assert Conversation.objects.count() == 2 and Customer.objects.count() == 2


def test_a_signed_in_portal_customer_chats_on_their_own_profile(inbox):
    customer = Customer.objects.create(display_name="Wang Lina", first_name="Lina", email="lina@example.cn")
    token = token_for(inbox, customer_token=sign_customer(customer.pk))

    async def scenario():
        comm = await visitor(token)
        await comm.receive_json_from()
        ack = await say(comm, "Where is SO-1?")
        await comm.disconnect()
        return ack

    ack = run(scenario)
    conv = Conversation.objects.get(pk=ack["conversation"])
    assert conv.customer == customer and Customer.objects.count() == 1


def test_a_site_not_allowed_to_embed_the_chat_is_refused(inbox):
    inbox.config = {**inbox.config, "allowed_origins": ["https://tea.example"]}
    inbox.save(update_fields=["config"])
    token = token_for(inbox)

    async def scenario():
        comm = await visitor(token, origin=(b"origin", b"https://evil.example"))
        error = await comm.receive_json_from()
        closed = await comm.receive_output()
        ok = await visitor(token, origin=(b"origin", b"https://tea.example"))
        hello = await ok.receive_json_from()
        await ok.disconnect()
        return error, closed, hello

    error, closed, hello = run(scenario)
    assert (error["code"], closed["code"], hello["type"]) == ("forbidden_origin", 4403, "hello")


def test_the_agent_socket_marks_presence_and_checks_who_may_watch(inbox, cast):
    li, bob = cast["agent_li"], cast["agent_bob"]
    token = token_for(inbox)

    async def scenario():
        comm = await visitor(token)
        await comm.receive_json_from()
        ack = await say(comm, "hi")
        anon = WebsocketCommunicator(AgentChatConsumer.as_asgi(), "/ws/chat/agents/")
        from django.contrib.auth.models import AnonymousUser

        anon.scope["user"] = AnonymousUser()
        refused = await anon.connect()
        sockets = {}
        for user in (li, bob):
            s = WebsocketCommunicator(AgentChatConsumer.as_asgi(), "/ws/chat/agents/")
            s.scope["user"] = user
            await s.connect()
            sockets[user.username] = s
        online = await database_sync_to_async(online_user_ids)([li.pk, bob.pk])
        for s in sockets.values():
            await s.send_json_to({"type": "watch", "conversation": ack["conversation"]})
        li_watch = await sockets["agent_li"].receive_json_from()
        bob_watch = await sockets["agent_bob"].receive_json_from()
        await say(comm, "second")
        li_event = await sockets["agent_li"].receive_json_from(timeout=5)
        bob_quiet = await sockets["agent_bob"].receive_nothing(timeout=0.3)
        await sockets["agent_li"].disconnect()
        still_online = await database_sync_to_async(online_user_ids)([li.pk, bob.pk])
        await sockets["agent_bob"].disconnect()
        await comm.disconnect()
        return refused, online, li_watch, bob_watch, li_event, bob_quiet, still_online

    refused, online, li_watch, bob_watch, li_event, bob_quiet, still_online = run(scenario)
    assert refused == (False, 4401)
    assert online == {li.pk, bob.pk} and still_online == {bob.pk}
    assert li_watch == {"type": "watching", "conversation": li_watch["conversation"]}
    assert bob_watch["code"] == "not_found" and bob_quiet  # another team's chat: refused, nothing leaks
    assert (li_event["type"], li_event["direction"]) == ("message.created", "in")
