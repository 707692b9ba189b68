"""The chat widget's public HTTP endpoints (/connect/chat/...): the script, the config with presence,
the pre-chat session with its field errors, the offline form that becomes an email conversation."""

from __future__ import annotations

from unittest import mock

import orjson
import pytest
from django.core import mail
from django.core.cache import cache
from django.urls import reverse

from ecrm.conversations.channels.chat.identity import sign_customer, verify_session
from ecrm.conversations.channels.chat.presence import drop_agent, touch_agent
from ecrm.conversations.models import Conversation, DeliveryStatus, Inbox, Message
from ecrm.conversations.services import create_inbox, do_send_reply
from ecrm.core.exceptions import ValidationFailed
from ecrm.core.models import Team
from ecrm.customers.models import Customer


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def inbox(cast):
    return Inbox.objects.create(name="Chat CN", kind="chat", team=Team.objects.get(name="Service CN"),
                                config={"require_email": True})  # fmt: skip


def post(client, name, data, **extra):
    return client.post(
        reverse(f"connect:{name}"), data=orjson.dumps(data), content_type="text/plain", **extra
    )


def test_the_widget_script_is_served_as_javascript_for_any_site(client):
    response = client.get("/connect/chat/widget.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert response["Access-Control-Allow-Origin"] == "*"
    assert b"/ws/chat/" in response.content and b"ecrm_aid" in response.content
    assert client.get("/connect/chat/widget.css")["Content-Type"].startswith("text/css")


def test_config_says_offline_until_an_agent_of_the_inbox_team_is_online(client, inbox, cast):
    url = reverse("connect:chat_config") + f"?inbox={inbox.pk}"
    assert client.get(url).json()["online"] is False
    touch_agent(cast["agent_bob"].pk, "tab-1")  # another team's agent does not count
    assert client.get(url).json()["online"] is False
    touch_agent(cast["agent_li"].pk, "tab-1")
    body = client.get(url, HTTP_ORIGIN="http://shop.example").json()
    assert body["online"] is True and body["require_email"] is True and body["strings"]["send"] == "Send"
    drop_agent(cast["agent_li"].pk, "tab-1")
    assert client.get(url).json()["online"] is False


def test_config_of_a_missing_or_switched_off_inbox_is_a_clear_404(client, inbox):
    Inbox.objects.filter(pk=inbox.pk).update(is_active=False)
    response = client.get(reverse("connect:chat_config") + f"?inbox={inbox.pk}")
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    response = client.get(reverse("connect:chat_config") + "?inbox=abc")
    assert response.status_code == 422 and response.json()["fields"] == {"inbox": "must be an integer"}


def test_a_session_needs_the_email_the_inbox_requires_and_signs_what_it_got(client, inbox):
    missing = post(client, "chat_session", {"inbox": inbox.pk, "name": "Lina"})
    bad = post(client, "chat_session", {"inbox": inbox.pk, "name": "Lina", "email": "not-an-address"})
    assert (missing.status_code, missing.json()["fields"]) == (422, {"email": "required"})
    assert bad.status_code == 422 and "email" in bad.json()["fields"]
    ok = post(client, "chat_session", {"inbox": inbox.pk, "name": " Lina ", "email": "Lina@Example.cn",
                                       "anonymous_id": "aid-1"}, HTTP_ORIGIN="http://shop.example")  # fmt: skip
    assert ok.status_code == 201 and ok["Access-Control-Allow-Origin"] == "http://shop.example"
    session = verify_session(ok.json()["token"])
    assert (session.inbox_id, session.name, session.email, session.anonymous_id) == (
        inbox.pk, "Lina", "lina@example.cn", "aid-1")  # fmt: skip
    assert Conversation.objects.count() == 0  # the conversation starts with the first message


def test_a_forged_customer_token_is_refused_and_a_real_one_names_the_customer(client, inbox):
    customer = Customer.objects.create(display_name="Wang Lina", email="lina@example.cn")
    forged = post(
        client, "chat_session", {"inbox": inbox.pk, "customer_token": sign_customer(customer.pk) + "x"}
    )
    assert forged.status_code == 401 and forged.json()["code"] == "bad_token"
    ok = post(client, "chat_session", {"inbox": inbox.pk, "customer_token": sign_customer(customer.pk)})
    session = verify_session(ok.json()["token"])
    assert (session.customer_id, session.email, session.name) == (customer.pk, "lina@example.cn", "Wang Lina")


def test_malformed_json_and_a_site_not_allowed_are_refused(client, inbox):
    bad = client.post(reverse("connect:chat_session"), data=b"{nope", content_type="text/plain")
    assert bad.status_code == 422 and bad.json()["code"] == "malformed_json"
    Inbox.objects.filter(pk=inbox.pk).update(config={"allowed_origins": ["https://tea.example"]})
    refused = post(
        client, "chat_session", {"inbox": inbox.pk, "email": "a@b.cn"}, HTTP_ORIGIN="https://evil.example"
    )
    assert refused.status_code == 422 and refused.json()["code"] == "forbidden_origin"
    assert "Access-Control-Allow-Origin" not in refused


def test_sessions_from_one_address_are_rate_limited(client, inbox):
    codes = [post(client, "chat_session", {"inbox": inbox.pk, "email": f"v{i}@example.cn"}).status_code
             for i in range(31)]  # fmt: skip
    assert codes == [201] * 30 + [429]


def test_an_offline_message_becomes_an_email_conversation_answered_by_email(
    client, inbox, cast, django_capture_on_commit_callbacks
):
    refused = post(client, "chat_offline", {"inbox": inbox.pk, "name": "Lina", "email": "", "body": " "})
    assert refused.status_code == 422
    assert refused.json()["fields"] == {"email": "required", "body": "required"}
    assert Conversation.objects.count() == 0
    ok = post(client, "chat_offline", {"inbox": inbox.pk, "name": "Lina", "email": "lina@example.cn",
                                       "body": "Please call me back about SO-1", "anonymous_id": "aid-9"})  # fmt: skip
    assert ok.status_code == 201
    conv = Conversation.objects.get()
    assert (conv.inbox, conv.contact, conv.visitor_id, conv.customer.email) == (
        inbox, "lina@example.cn", "aid-9", "lina@example.cn")  # fmt: skip
    assert conv.subject == "Offline chat message from Lina"
    with django_capture_on_commit_callbacks(execute=True):
        reply = do_send_reply(conversation=conv, actor=cast["agent_li"], body_text="We will call you at 3pm.")
    reply.refresh_from_db()
    assert reply.status == DeliveryStatus.SENT and reply.metadata["delivered_by"] == "email"
    assert [(m.to, m.body, m.subject) for m in mail.outbox] == [
        (["lina@example.cn"], "We will call you at 3pm.", "Re: Offline chat message from Lina")]  # fmt: skip


def test_an_offline_message_goes_to_the_configured_email_inbox(client, cast):
    email_inbox = Inbox.objects.create(
        name="Support mail", kind="email", team=Team.objects.get(name="Service EN")
    )
    chat = Inbox.objects.create(name="Chat", kind="chat", config={"offline_inbox_id": email_inbox.pk})
    ok = post(client, "chat_offline", {"inbox": chat.pk, "email": "x@example.com", "body": "Hi"})
    assert ok.status_code == 201
    conv = Conversation.objects.get()
    assert (conv.inbox, conv.channel, conv.team.name) == (email_inbox, "email", "Service EN")
    assert Message.objects.get().body_text == "Hi"


def test_a_live_chat_reply_is_delivered_by_the_socket_push_not_by_mail(
    inbox, cast, django_capture_on_commit_callbacks
):
    from ecrm.conversations.channels.chat.identity import ChatSession
    from ecrm.conversations.channels.chat.services import do_post_visitor_message
    from ecrm.core.models import JobClaim

    result = do_post_visitor_message(session=ChatSession("s1", inbox.pk, "aid-2"), body="hi", client_id="1")
    jobs_before = JobClaim.objects.count()
    with (
        mock.patch("ecrm.conversations.services._enqueue_delivery") as delivery_job,
        django_capture_on_commit_callbacks(execute=True),
    ):
        reply = do_send_reply(conversation=result.conversation, actor=cast["agent_li"], body_text="hello")
    reply.refresh_from_db()
    assert reply.status == DeliveryStatus.SENT and reply.metadata == {"delivered_by": "websocket"}
    # delivered by the publish at commit: no delivery job, and no ledger row written for one
    assert not delivery_job.called
    assert JobClaim.objects.count() == jobs_before
    assert mail.outbox == []


def test_chat_inbox_settings_are_validated_field_by_field(cast):
    with pytest.raises(ValidationFailed) as exc:
        create_inbox(actor=cast["admin"], name="Chat", kind="chat", team=None,
                     config={"rate_limit_messages": 0, "allowed_origins": ["shop.example/path"], "colour": "red"})  # fmt: skip
    assert set(exc.value.fields) == {"config.rate_limit_messages", "config.allowed_origins", "config.colour"}
    assert Inbox.objects.count() == 0
    inbox = create_inbox(actor=cast["admin"], name="Chat", kind="chat", team=None,
                         config={"allowed_origins": ["https://Tea.example/"]})  # fmt: skip
    assert inbox.config["allowed_origins"] == ["https://tea.example"]
    assert inbox.config["max_message_chars"] == 4000 and inbox.config["rate_limit_messages"] == 10


def test_the_demo_shop_embeds_the_widget(client, inbox):
    customer = Customer.objects.create(display_name="C")
    token = sign_customer(customer.pk)
    html = client.get(
        reverse("connect:chat_demo_shop") + f"?inbox={inbox.pk}&customer_token={token}"
    ).content.decode()
    assert f'data-inbox="{inbox.pk}"' in html and f'data-customer-token="{token}"' in html
    assert 'src="/connect/chat/widget.js"' in html
