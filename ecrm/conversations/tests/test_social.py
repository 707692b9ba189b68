"""Social: the generic inbound webhook for mentions and direct messages, matched by social identity."""

from __future__ import annotations

import orjson
import pytest

from ecrm.conversations.models import Conversation, Message
from ecrm.conversations.services import create_inbox
from ecrm.core.http import sign
from ecrm.core.models import Team
from ecrm.customers.models import Customer, Identity
from ecrm.customers.timeline import build_timeline

URL = "/api/v1/conversations/social/inbound/{}"
SECRET = "social-secret-0123456789"


@pytest.fixture
def social_inbox(cast):
    return create_inbox(actor=cast["admin"], name="Weibo", kind="social",
                        team=Team.objects.get(name="Service CN"))  # fmt: skip


def item(**kw):
    base = {"platform": "weibo", "kind": "direct", "handle": "@XiaoMing", "display_name": "小明",
            "text": "我的订单什么时候到？", "external_id": "m-1", "thread_id": "dm-42"}  # fmt: skip
    return {**base, **kw}


def test_a_direct_message_creates_the_customer_by_social_identity_and_a_conversation(api, social_inbox, cast):
    response = api.post(URL.format(social_inbox.pk), item())
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "created" and body["created_customer"] is True
    ident = Identity.objects.get()
    assert (ident.kind, ident.value) == ("social", "weibo:xiaoming")
    conv = Conversation.objects.get()
    assert (conv.channel, conv.subject, conv.customer, conv.contact) == (
        "social", "Weibo message from @XiaoMing", ident.customer, "weibo:xiaoming",
    )  # fmt: skip
    assert ident.customer.first_name == "小明"
    message = Message.objects.get()
    assert (message.body_text, message.external_id) == ("我的订单什么时候到？", "weibo:m-1")
    assert message.metadata["social"]["thread_id"] == "dm-42"
    entries = [
        e for e in build_timeline(ident.customer, user=cast["agent_li"]).entries if e.kind == "message"
    ]
    assert len(entries) == 1 and "我的订单什么时候到？" in entries[0].body


def test_the_same_handle_is_matched_whatever_the_case_or_at_sign_and_threads_together(api, social_inbox):
    api.post(URL.format(social_inbox.pk), item())
    second = api.post(URL.format(social_inbox.pk), item(handle="xiaoming", external_id="m-2", text="还在吗"))
    assert second.status_code == 201 and second.json()["created_customer"] is False
    assert (
        Customer.objects.count() == 1 and Conversation.objects.count() == 1 and Message.objects.count() == 2
    )


def test_a_resent_post_is_stored_once(api, social_inbox):
    api.post(URL.format(social_inbox.pk), item())
    again = api.post(URL.format(social_inbox.pk), item())
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert Message.objects.count() == 1 and Conversation.objects.get().unread == 1


def test_mentions_in_one_public_thread_are_one_conversation_per_author(api, social_inbox):
    url = URL.format(social_inbox.pk)
    api.post(url, item(kind="mention", handle="a", external_id="p1", thread_id="post-9", text="@shop hi",
                       link="https://weibo.example/p1"))  # fmt: skip
    api.post(url, item(kind="mention", handle="b", external_id="p2", thread_id="post-9", text="@shop me too"))
    api.post(url, item(kind="mention", handle="a", external_id="p3", thread_id="post-9", text="@shop again"))
    convs = {c.customer.identities.get().value: c for c in Conversation.objects.select_related("customer")}
    assert sorted(convs) == ["weibo:a", "weibo:b"]
    assert convs["weibo:a"].messages.count() == 2 and convs["weibo:b"].messages.count() == 1
    assert Message.objects.get(external_id="weibo:p1").body_text == "@shop hi\nhttps://weibo.example/p1"
    assert convs["weibo:a"].subject == "Weibo mention by @a"


def test_a_list_is_answered_item_by_item_and_the_good_items_are_stored(api, social_inbox):
    response = api.post(URL.format(social_inbox.pk), [
        item(external_id="ok-1"),
        item(external_id="ok-1"),
        item(kind="like", handle="has space", external_id=""),
        "not an object",
        item(text="", link=None, external_id="empty"),
        item(platform="douyin", handle="zhang", external_id="ok-2"),
    ])  # fmt: skip
    assert response.status_code == 200
    body = response.json()
    assert (body["created"], body["duplicate"], body["error"]) == (2, 1, 3)
    statuses = [(r["index"], r["status"]) for r in body["results"]]
    assert statuses == [
        (0, "created"),
        (1, "duplicate"),
        (2, "error"),
        (3, "error"),
        (4, "error"),
        (5, "created"),
    ]
    assert set(body["results"][2]["errors"]) == {"kind", "handle", "external_id"}
    assert body["results"][3]["errors"] == {"body": "must be an object"}
    assert "text or link is required" in body["results"][4]["errors"]["body"]
    assert sorted(Message.objects.values_list("external_id", flat=True)) == ["douyin:ok-2", "weibo:ok-1"]


def test_bad_single_items_and_bad_envelopes_are_refused_with_field_errors(api, social_inbox):
    url = URL.format(social_inbox.pk)
    r = api.post(url, item(platform="微博!", link="ftp://x", sent_at="yesterday"))
    assert r.status_code == 422 and set(r.json()["fields"]) == {"platform", "link", "sent_at"}
    assert api.post(url, []).status_code == 422
    assert api.post(url, [item(external_id=str(i)) for i in range(101)]).status_code == 422
    assert api.post(url, raw=b"[{").status_code == 400
    assert not Message.objects.exists() and not Customer.objects.exists()


def test_the_webhook_refuses_read_keys_no_key_other_inboxes_and_bad_signatures(api, api_read, api_anon, cast,
                                                                              social_inbox):  # fmt: skip
    url = URL.format(social_inbox.pk)
    assert api_read.post(url, item()).status_code == 403
    assert api_anon.post(url, item()).status_code == 401
    phone = create_inbox(actor=cast["admin"], name="Hotline", kind="phone", team=None)
    assert api.post(URL.format(phone.pk), item()).status_code == 404
    signed = create_inbox(actor=cast["admin"], name="Signed", kind="social", team=None,
                          config={"signing_secret": SECRET})  # fmt: skip
    raw = orjson.dumps(item())
    assert api.post(URL.format(signed.pk), raw=raw, HTTP_X_SIGNATURE="sha256=00").status_code == 401
    assert not Message.objects.exists() and not Customer.objects.exists()
    ok = api.post(URL.format(signed.pk), raw=raw, HTTP_X_SIGNATURE=sign(SECRET, raw))
    assert ok.status_code == 201 and Message.objects.count() == 1


def test_an_agent_of_another_team_does_not_see_social_messages(api, social_inbox, cast):
    api.post(URL.format(social_inbox.pk), item())
    customer = Customer.objects.get()
    assert [e for e in build_timeline(customer, user=cast["agent_bob"]).entries if e.kind == "message"] == []


def test_a_reply_goes_to_the_connector_signed_and_is_marked_sent(
    api, cast, monkeypatch, django_capture_on_commit_callbacks
):
    from ecrm.conversations.services import do_send_reply
    from ecrm.core import http

    calls = []

    def fake_send(method, url, *, body=b"", headers=None, secret=None, **kw):
        calls.append((method, url, orjson.loads(body), secret))
        return http.Response(200, b'{"external_id": "r-77"}', {})

    monkeypatch.setattr(http, "send", fake_send)
    inbox = create_inbox(actor=cast["admin"], name="Weibo", kind="social", team=Team.objects.get(name="Service CN"),
                         config={"signing_secret": SECRET, "reply_url": "https://connector.example/reply"})  # fmt: skip
    raw = orjson.dumps(item())
    api.post(URL.format(inbox.pk), raw=raw, HTTP_X_SIGNATURE=sign(SECRET, raw))
    conv = Conversation.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        reply = do_send_reply(conversation=conv, actor=cast["agent_li"], body_text="明天送达。")
    reply.refresh_from_db()
    assert (reply.status, reply.external_id) == ("sent", "weibo:r-77")
    assert calls == [("POST", "https://connector.example/reply", {
        "platform": "weibo", "kind": "direct", "handle": "XiaoMing", "thread_id": "dm-42", "in_reply_to": "m-1",
        "text": "明天送达。", "message_id": reply.pk, "conversation": conv.pk}, SECRET)]  # fmt: skip


def test_a_reply_without_a_connector_or_refused_by_it_is_marked_failed(
    api, social_inbox, cast, monkeypatch, django_capture_on_commit_callbacks
):
    from ecrm.conversations.channels.base import DeliveryError, get_adapter
    from ecrm.conversations.services import do_send_reply
    from ecrm.core import http

    api.post(URL.format(social_inbox.pk), item())
    conv = Conversation.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        reply = do_send_reply(conversation=conv, actor=cast["agent_li"], body_text="hi")
    reply.refresh_from_db()
    assert reply.status == "failed" and "no reply connector" in reply.error
    social_inbox.config = {"reply_url": "https://connector.example/reply"}
    for status, permanent in ((400, True), (429, False), (503, False)):
        monkeypatch.setattr(http, "send", lambda *a, status=status, **k: http.Response(status, b"", {}))
        with pytest.raises(DeliveryError) as exc:
            get_adapter("social").send(Message(conversation=conv, inbox=social_inbox, body_text="x"))
        assert exc.value.permanent is permanent
