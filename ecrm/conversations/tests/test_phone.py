"""Phone: the CTI webhook (idempotent, out of order, signed), call records on the customer's
conversation and timeline, and click-to-call links."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest
from django.template import Context, Template

from ecrm.conversations.models import CallRecord, Conversation, Message
from ecrm.conversations.services import create_inbox
from ecrm.core.exceptions import ValidationFailed
from ecrm.core.http import sign
from ecrm.core.models import Team
from ecrm.customers.models import Customer, Identity
from ecrm.customers.timeline import build_timeline

URL = "/api/v1/conversations/phone/events/{}"
SECRET = "s3cret-s3cret-s3cret"
T0 = dt.datetime(2026, 3, 1, 9, 0, 0, tzinfo=dt.UTC)


@pytest.fixture
def phone_inbox(cast):
    return create_inbox(
        actor=cast["admin"], name="Hotline", kind="phone", team=Team.objects.get(name="Service CN"),
        config={"extensions": {"8001": "agent_li"}},
    )  # fmt: skip


def event(kind, *, call_id="c-1", at=0, **kw):
    body = {"event": kind, "call_id": call_id, "direction": "inbound", "from": "138 0013 8000",
            "to": "+86 10 8888 0000", "timestamp": (T0 + dt.timedelta(seconds=at)).isoformat()}  # fmt: skip
    return {**body, **kw}


def test_a_full_inbound_call_is_one_record_and_one_readable_log_line(api, phone_inbox, cast):
    assert api.post(URL.format(phone_inbox.pk), event("start")).status_code == 201
    answer = api.post(URL.format(phone_inbox.pk), event("answer", at=12, agent="8001"))
    end = api.post(URL.format(phone_inbox.pk),
                   event("end", at=204, recording_url="https://rec.example/c-1.mp3"))  # fmt: skip
    assert (answer.status_code, end.status_code) == (200, 200)
    body = end.json()
    assert body["status"] == "updated" and body["duration_seconds"] == 192 and body["agent"] == "agent_li"
    call = CallRecord.objects.get()
    assert (call.direction, call.customer_number, call.agent, call.started_at, call.answered_at, call.ended_at) == (
        "inbound", "+8613800138000", cast["agent_li"], T0, T0 + dt.timedelta(seconds=12),
        T0 + dt.timedelta(seconds=204),
    )  # fmt: skip
    message = Message.objects.get()
    li = cast["agent_li"].get_full_name()
    assert message.body_text == (
        f"Inbound call from +8613800138000 · answered by {li} · 3 min 12 s · recording: https://rec.example/c-1.mp3"
    )
    assert message.metadata["call"]["events"] == ["start", "answer", "end"] and message.created_at == T0
    customer = Identity.objects.get(kind="phone", value="+8613800138000").customer
    assert call.conversation.customer == customer and call.conversation.channel == "phone"
    timeline = [e for e in build_timeline(customer, user=cast["agent_li"]).entries if e.kind == "message"]
    assert [e.body for e in timeline] == ["Phone calls — " + message.body_text]


def test_events_are_idempotent_per_call_and_event(api, phone_inbox):
    first = api.post(URL.format(phone_inbox.pk), event("start"))
    again = api.post(URL.format(phone_inbox.pk), event("start", at=5))
    assert (first.status_code, again.status_code, again.json()["status"]) == (201, 200, "duplicate")
    api.post(URL.format(phone_inbox.pk), event("end", at=30))
    repeat_end = api.post(URL.format(phone_inbox.pk), event("end", at=99))
    assert repeat_end.json()["status"] == "duplicate"
    call = CallRecord.objects.get()
    assert call.ended_at == T0 + dt.timedelta(seconds=30) and Message.objects.count() == 1
    assert Conversation.objects.get().unread == 1


def test_out_of_order_events_end_up_as_the_same_call(api, phone_inbox):
    assert api.post(URL.format(phone_inbox.pk), event("end", at=300)).status_code == 201
    assert "not answered" in Message.objects.get().body_text
    api.post(URL.format(phone_inbox.pk), event("answer", at=60, agent="agent_li"))
    api.post(URL.format(phone_inbox.pk), event("start", at=0))
    call = CallRecord.objects.get()
    assert (call.started_at, call.answered_at, call.ended_at, call.duration_seconds) == (
        T0, T0 + dt.timedelta(seconds=60), T0 + dt.timedelta(seconds=300), 240,
    )  # fmt: skip
    assert "4 min 00 s" in Message.objects.get().body_text


def test_a_missed_call_and_an_outbound_call_read_clearly(api, phone_inbox):
    api.post(URL.format(phone_inbox.pk), event("start", call_id="m"))
    api.post(URL.format(phone_inbox.pk), event("end", call_id="m", at=20))
    api.post(URL.format(phone_inbox.pk), event("start", call_id="o", direction="outbound", **{
        "from": "8001", "to": "13900139000"}))  # fmt: skip
    lines = dict(Message.objects.values_list("external_id", "body_text"))
    assert lines == {
        "call:m": "Inbound call from +8613800138000 · not answered",
        "call:o": "Outbound call to +8613900139000 · in progress",
    }


def test_calls_from_one_number_share_the_customer_and_thread_and_a_known_customer_is_matched(
    api, phone_inbox
):
    known = Customer.objects.create(display_name="Known", phone="+8613800138000")
    Identity.objects.create(customer=known, kind="phone", value="+8613800138000")
    api.post(URL.format(phone_inbox.pk), event("start", call_id="a"))
    api.post(URL.format(phone_inbox.pk), event("start", call_id="b", **{"from": "+86 138-0013-8000"}))
    assert Customer.objects.count() == 1 and Conversation.objects.get().customer == known
    assert CallRecord.objects.count() == 2 and Message.objects.count() == 2


def test_bad_events_get_field_errors_and_store_nothing(api, phone_inbox):
    url = URL.format(phone_inbox.pk)
    r = api.post(url, {"event": "ring", "call_id": "", "direction": "sideways", "from": "x", "to": "y",
                       "timestamp": "2026-03-01T09:00:00"})  # fmt: skip
    assert r.status_code == 422
    assert set(r.json()["fields"]) == {"event", "call_id", "direction", "timestamp"}
    r = api.post(url, event("start", **{"from": "not a number"}))
    assert r.status_code == 422 and r.json()["fields"] == {"from": "not a valid phone number"}
    r = api.post(url, event("start", recording_url="javascript:alert(1)"))
    assert r.status_code == 422 and "recording_url" in r.json()["fields"]
    assert api.post(url, raw=b"{not json").status_code == 400
    assert api.post(url, [1, 2]).status_code == 422
    assert api.post(url, raw=b"{" + b" " * 70_000 + b"}").status_code == 413
    assert not CallRecord.objects.exists() and not Message.objects.exists() and not Customer.objects.exists()


def test_the_webhook_refuses_read_keys_no_key_and_other_inboxes(api, api_read, api_anon, phone_inbox, cast):
    url = URL.format(phone_inbox.pk)
    assert api_read.post(url, event("start")).status_code == 403
    assert api_anon.post(url, event("start")).status_code == 401
    social = create_inbox(actor=cast["admin"], name="Weibo", kind="social", team=None)
    assert api.post(URL.format(social.pk), event("start")).status_code == 404
    assert api.post(URL.format(999999), event("start")).status_code == 404
    assert not CallRecord.objects.exists() and not Customer.objects.exists()


def test_a_signed_inbox_accepts_only_a_matching_signature(api, cast):
    inbox = create_inbox(actor=cast["admin"], name="Signed", kind="phone", team=None,
                         config={"signing_secret": SECRET})  # fmt: skip
    raw = orjson.dumps(event("start"))
    url = URL.format(inbox.pk)
    assert api.post(url, raw=raw).status_code == 401
    assert api.post(url, raw=raw, HTTP_X_SIGNATURE="sha256=" + "0" * 64).status_code == 401
    assert api.post(url, raw=raw, HTTP_X_SIGNATURE=sign("wrong-secret-wrong", raw)).status_code == 401
    assert not CallRecord.objects.exists()
    response = api.post(
        url, raw=raw, HTTP_X_SIGNATURE=sign(SECRET, raw).upper().replace("SHA256=", "sha256=")
    )
    assert response.status_code == 201 and CallRecord.objects.count() == 1


def test_phone_settings_are_validated(cast):
    with pytest.raises(ValidationFailed) as exc:
        create_inbox(actor=cast["admin"], name="Bad", kind="phone", team=None,
                     config={"signing_secret": "short", "extensions": {"ext-1": "agent_li"}, "bogus": 1})  # fmt: skip
    assert set(exc.value.fields) == {"config.signing_secret", "config.extensions", "config.bogus"}


def test_another_teams_agent_does_not_see_the_call(api, phone_inbox, cast):
    api.post(URL.format(phone_inbox.pk), event("start"))
    customer = Customer.objects.get()
    assert [e for e in build_timeline(customer, user=cast["agent_bob"]).entries if e.kind == "message"] == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("13800138000", '<a href="tel:+8613800138000" class="click-to-call" title="+8613800138000">'
                        "+86 138 0013 8000</a>"),
        ("+1 650-253-0000", '<a href="tel:+16502530000" class="click-to-call" title="+16502530000">'
                            "+1 650-253-0000</a>"),
        ('"><script>alert(1)</script>', "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"),
        ("12", "12"),
        (None, ""),
    ],
)  # fmt: skip
def test_click_to_call_renders_a_safe_tel_link(value, expected):
    rendered = Template("{% load conversations_phone %}{{ phone|click_to_call }}").render(
        Context({"phone": value})
    )
    assert rendered == expected


def test_the_phone_conversation_page_lists_the_calls(api, phone_inbox, login):
    api.post(URL.format(phone_inbox.pk), event("start"))
    api.post(URL.format(phone_inbox.pk), event("answer", at=10, agent="agent_li"))
    api.post(URL.format(phone_inbox.pk), event("end", at=70, recording_url="https://rec.example/1.mp3"))
    conv = Conversation.objects.get()
    page = login("agent_li").get(f"/inbox/{conv.pk}/").content.decode()
    assert 'data-call="c-1"' in page and "60 s" in page and 'href="https://rec.example/1.mp3"' in page
    assert 'href="tel:+8613800138000"' in page


def test_the_answering_agent_takes_an_unassigned_phone_conversation(api, phone_inbox, cast):
    api.post(URL.format(phone_inbox.pk), event("start"))
    api.post(URL.format(phone_inbox.pk), event("answer", at=5, agent="agent_bob"))  # not on Service CN
    assert Conversation.objects.get().assignee is None and CallRecord.objects.get().agent == cast["agent_bob"]
    api.post(URL.format(phone_inbox.pk), event("answer", call_id="c-2", at=50, agent="8001"))
    assert Conversation.objects.get().assignee == cast["agent_li"]
    api.post(URL.format(phone_inbox.pk), event("answer", call_id="c-3", at=90, agent="manager"))
    assert Conversation.objects.get().assignee == cast["agent_li"]  # an owner is kept
