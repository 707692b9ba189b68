"""The inbound pipeline every channel ends in: customer matching, threading, idempotency, visibility."""

from __future__ import annotations

import pytest

from ecrm.conversations.models import Conversation, ConversationStatus, Inbox, Message
from ecrm.conversations.selectors import access_conversation_for_user, conversations_for_user
from ecrm.conversations.services import Inbound, IncomingAttachment, do_send_reply, receive_inbound
from ecrm.core.exceptions import NotFound, ValidationFailed
from ecrm.core.models import Team
from ecrm.customers.models import Customer, Identity
from ecrm.customers.timeline import build_timeline


@pytest.fixture
def inboxes(cast):
    cn = Team.objects.get(name="Service CN")
    en = Team.objects.get(name="Service EN")
    return (
        Inbox.objects.create(name="CN mail", kind="email", team=cn),
        Inbox.objects.create(name="EN mail", kind="email", team=en),
    )


def test_a_message_from_an_unknown_address_creates_the_customer_and_a_conversation(inboxes):
    cn, _ = inboxes
    result = receive_inbound(
        Inbound(
            inbox=cn,
            identities=[("email", "New.Person@Example.com")],
            subject="Where is my order?",
            body_text="Hi",
            external_id="<a1@example.com>",
            traits={"first_name": "New"},
        )  # fmt: skip
    )
    assert result.created_conversation and result.created_customer and not result.duplicate
    assert (
        Identity.objects.get(kind="email", value="new.person@example.com").customer
        == result.conversation.customer
    )
    conv = Conversation.objects.get()
    assert (conv.subject, conv.team, conv.unread, conv.contact) == (
        "Where is my order?",
        cn.team,
        1,
        "New.Person@Example.com",
    )


def test_a_known_customer_is_matched_and_a_reply_threads_by_reference(inboxes):
    cn, _ = inboxes
    known = Customer.objects.create(display_name="Known", email="known@example.com")
    Identity.objects.create(customer=known, kind="email", value="known@example.com")
    first = receive_inbound(Inbound(inbox=cn, identities=[("email", "known@example.com")], body_text="1",
                                    external_id="<m1@x>"))  # fmt: skip
    second = receive_inbound(Inbound(inbox=cn, identities=[("email", "known@example.com")], body_text="2",
                                     external_id="<m2@x>", references=["<m1@x>"]))  # fmt: skip
    assert first.conversation.customer == known
    assert second.conversation.pk == first.conversation.pk and not second.created_conversation
    assert Customer.objects.count() == 1 and Message.objects.count() == 2


def test_a_resent_message_is_stored_once(inboxes):
    cn, _ = inboxes
    data = Inbound(inbox=cn, identities=[("email", "a@example.com")], body_text="x", external_id="<same@x>")
    receive_inbound(data)
    again = receive_inbound(data)
    assert again.duplicate and Message.objects.count() == 1 and Conversation.objects.get().unread == 1


def test_a_new_message_reopens_a_resolved_conversation(inboxes):
    cn, _ = inboxes
    first = receive_inbound(
        Inbound(inbox=cn, identities=[("email", "a@example.com")], body_text="1", thread_key="t")
    )
    Conversation.objects.filter(pk=first.conversation.pk).update(status=ConversationStatus.RESOLVED)
    receive_inbound(Inbound(inbox=cn, identities=[("email", "a@example.com")], body_text="2", thread_key="t"))
    assert Conversation.objects.get().status == ConversationStatus.OPEN


def test_empty_messages_and_senderless_messages_are_refused(inboxes):
    cn, _ = inboxes
    with pytest.raises(ValidationFailed, match="empty"):
        receive_inbound(Inbound(inbox=cn, identities=[("email", "a@example.com")]))
    with pytest.raises(ValidationFailed, match="sender"):
        receive_inbound(Inbound(inbox=cn, identities=[], body_text="x"))
    assert not Message.objects.exists() and not Customer.objects.exists()


def test_hostile_html_is_sanitised_before_it_is_stored(inboxes):
    cn, _ = inboxes
    html = '<p onclick="x()">Hi<script>alert(1)</script><img src="https://evil.test/t.png" onerror="y()"></p>'
    result = receive_inbound(Inbound(inbox=cn, identities=[("email", "a@example.com")], body_html=html))
    stored = result.message.body_html
    assert "script" not in stored and "onclick" not in stored and "onerror" not in stored
    assert 'src="https://evil.test/t.png"' in stored and result.message.body_text == "Hi"


def test_refused_attachments_are_listed_and_good_ones_stored(inboxes):
    cn, _ = inboxes
    result = receive_inbound(
        Inbound(
            inbox=cn,
            identities=[("email", "a@example.com")],
            body_text="files",
            attachments=[
                IncomingAttachment("photo.png", "image/png", b"\x89PNG\r\n\x1a\n" + b"0" * 100),
                IncomingAttachment("invoice.pdf", "application/pdf", b"MZ\x90\x00 not a pdf"),
                IncomingAttachment("run.exe", "application/x-msdownload", b"MZ"),
            ],
        )  # fmt: skip
    )
    stored = list(result.message.attachments.values_list("filename", "size"))
    assert stored == [("photo.png", 108)]
    assert [r["filename"] for r in result.message.metadata["refused_attachments"]] == [
        "invoice.pdf",
        "run.exe",
    ]


def test_an_agent_sees_only_their_teams_conversations_everywhere(inboxes, cast):
    cn, en = inboxes
    li, bob = cast["agent_li"], cast["agent_bob"]
    mine = receive_inbound(Inbound(inbox=cn, identities=[("email", "c@example.com")], body_text="cn"))
    theirs = receive_inbound(Inbound(inbox=en, identities=[("email", "c@example.com")], body_text="en"))
    assert list(conversations_for_user(li)) == [mine.conversation]
    assert set(conversations_for_user(cast["manager"])) == {mine.conversation, theirs.conversation}
    with pytest.raises(NotFound):
        access_conversation_for_user(li, theirs.conversation.pk)
    # the same customer's timeline shows each agent only their team's messages
    customer = mine.conversation.customer
    bodies = lambda user: [e.body for e in build_timeline(customer, user=user).entries if e.kind == "message"]  # noqa: E731
    assert bodies(li) == ["cn"] and bodies(bob) == ["en"] and bodies(cast["analyst"]) == []
    with pytest.raises(NotFound):
        do_send_reply(conversation=theirs.conversation, actor=li, body_text="not mine")
    assert Message.objects.filter(direction="out").count() == 0
