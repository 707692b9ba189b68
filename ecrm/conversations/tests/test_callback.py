"""Callback requests: booking (public form and API), the agents' list, reminders, outcomes."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from ecrm.conversations.channels.callback import services as callback_services
from ecrm.conversations.channels.callback.selectors import callbacks_for_user
from ecrm.conversations.channels.callback.services import (
    do_record_callback_outcome,
    do_request_callback,
    send_due_reminders,
)
from ecrm.conversations.channels.webform import antispam
from ecrm.conversations.models import CallbackRequest, CallbackStatus, Conversation, Message
from ecrm.conversations.services import create_inbox
from ecrm.core.exceptions import Conflict, NotFound, ValidationFailed
from ecrm.core.models import Team
from ecrm.customers.models import Customer, Identity
from ecrm.customers.timeline import build_timeline

URL = "/api/v1/conversations/callback/{}"


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def cn_callbacks(cast):
    return create_inbox(
        actor=cast["admin"], name="CN callbacks", kind="callback", team=Team.objects.get(name="Service CN"),
        config={"timezone": "Asia/Shanghai", "min_notice_minutes": 15}, auto_assign=True,
    )  # fmt: skip


@pytest.fixture
def en_callbacks(cast):
    return create_inbox(actor=cast["admin"], name="EN callbacks", kind="callback",
                        team=Team.objects.get(name="Service EN"))  # fmt: skip


def in_(hours=0, minutes=0, days=0):
    return timezone.now() + dt.timedelta(hours=hours, minutes=minutes, days=days)


def book(inbox, *, when=None, phone="13800138000", **kw):
    return do_request_callback(inbox=inbox, phone=phone, requested_for=when or in_(hours=2), **kw)


def test_a_booking_creates_a_conversation_a_scheduled_callback_and_a_timeline_entry(cn_callbacks, cast):
    when = dt.datetime(2030, 1, 2, 10, 30, tzinfo=dt.UTC)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(timezone, "now", lambda: dt.datetime(2030, 1, 1, 9, 0, tzinfo=dt.UTC))
        callback = book(cn_callbacks, when=when, name="王小明", note="About order 1001")
    conv = callback.conversation
    assert (callback.phone, callback.requested_for, callback.status) == ("+8613800138000", when, "scheduled")
    assert (conv.channel, conv.team.name, conv.subject) == ("callback", "Service CN", "Callback request")
    assert Identity.objects.get(kind="phone", value="+8613800138000").customer == conv.customer
    assert conv.customer.first_name == "王小明"
    # the body shows the time in the inbox's zone (Shanghai, UTC+8)
    assert Message.objects.get().body_text == (
        "Please call me back on +8613800138000 at 2030-01-02 18:30 (Asia/Shanghai).\nAbout order 1001"
    )
    assert [e.kind for e in build_timeline(conv.customer, user=cast["agent_li"]).entries].count(
        "message"
    ) == 1


def test_callbacks_are_assigned_round_robin_with_their_conversation(
    cn_callbacks, cast, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = book(cn_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        second = book(cn_callbacks, phone="13900139000")
    first.refresh_from_db()
    second.refresh_from_db()
    members = Team.objects.get(name="Service CN").members.filter(role__in=["agent", "manager"]).order_by("id")
    assert first.assignee is not None and first.assignee == first.conversation.assignee
    assert {first.assignee_id, second.assignee_id} <= set(members.values_list("id", flat=True))
    if members.count() > 1:
        assert first.assignee_id != second.assignee_id


@pytest.mark.parametrize(
    ("when", "error"),
    [
        (lambda: in_(minutes=-5), "in the future"),
        (lambda: in_(minutes=5), "at least 15 minutes"),
        (lambda: in_(days=31), "within the next 30 days"),
        (lambda: None, "required"),
    ],
)
def test_a_time_in_the_past_too_soon_or_too_far_is_refused_and_nothing_stored(cn_callbacks, when, error):
    with pytest.raises(ValidationFailed) as exc:
        do_request_callback(inbox=cn_callbacks, phone="13800138000", requested_for=when())
    assert error in exc.value.fields["requested_for"]
    assert not Conversation.objects.exists() and not Customer.objects.exists()


def test_business_hours_are_enforced_in_the_inbox_time_zone(cast):
    inbox = create_inbox(
        actor=cast["admin"], name="Hours", kind="callback", team=None,
        config={"timezone": "Asia/Shanghai", "opens": "09:00", "closes": "18:00", "days": [0, 1, 2, 3, 4]},
    )  # fmt: skip
    now = dt.datetime(2030, 1, 1, 0, 0, tzinfo=dt.UTC)  # a Tuesday
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(timezone, "now", lambda: now)
        ok = book(inbox, when=dt.datetime(2030, 1, 2, 2, 0, tzinfo=dt.UTC))  # Wed 10:00 in Shanghai
        for bad in (dt.datetime(2030, 1, 2, 12, 0, tzinfo=dt.UTC),  # Wed 20:00
                    dt.datetime(2030, 1, 5, 2, 0, tzinfo=dt.UTC)):  # Sat 10:00  # fmt: skip
            with pytest.raises(ValidationFailed) as exc:
                book(inbox, when=bad)
            assert "between 09:00 and 18:00 on working days" in exc.value.fields["requested_for"]
    assert CallbackRequest.objects.get() == ok
    with pytest.raises(ValidationFailed) as exc:
        create_inbox(actor=cast["admin"], name="Bad", kind="callback", team=None,
                     config={"opens": "18:00", "closes": "09:00", "timezone": "Mars/Olympus"})  # fmt: skip
    assert "config.timezone" in exc.value.fields


def test_bad_phone_and_email_are_reported_together(cn_callbacks):
    with pytest.raises(ValidationFailed) as exc:
        do_request_callback(inbox=cn_callbacks, phone="12", email="nope", requested_for=in_(minutes=1))
    assert set(exc.value.fields) == {"phone", "email", "requested_for"}
    assert not Conversation.objects.exists()


# --- API -----------------------------------------------------------------------------------------


def test_the_api_books_a_callback_with_a_write_key(api, cn_callbacks):
    when = in_(days=1).replace(microsecond=0)
    response = api.post(URL.format(cn_callbacks.pk),
                        {"phone": "+86 138 0013 8000", "requested_for": when.isoformat(), "name": "Li",
                         "email": "li@example.com"})  # fmt: skip
    assert response.status_code == 201, response.content
    body = response.json()
    callback = CallbackRequest.objects.get()
    assert body["id"] == callback.pk and body["phone"] == "+8613800138000" and body["status"] == "scheduled"
    assert dt.datetime.fromisoformat(body["requested_for"]) == when
    assert set(Identity.objects.values_list("kind", flat=True)) == {"phone", "email"}


def test_the_api_answers_bad_input_with_field_errors_and_stores_nothing(api, cn_callbacks):
    response = api.post(
        URL.format(cn_callbacks.pk), {"phone": "abc", "requested_for": in_(minutes=-1).isoformat()}
    )
    assert response.status_code == 422
    assert set(response.json()["fields"]) == {"phone", "requested_for"}
    response = api.post(URL.format(cn_callbacks.pk), {"phone": "13800138000", "requested_for": "tomorrow"})
    assert response.status_code == 422 and "requested_for" in response.json()["fields"]
    response = api.post(URL.format(cn_callbacks.pk), {"requested_for": in_(days=1).isoformat()})
    assert response.status_code == 422 and "phone" in response.json()["fields"]
    assert not CallbackRequest.objects.exists() and not Customer.objects.exists()


def test_the_api_refuses_read_keys_no_key_and_other_inboxes(api, api_read, api_anon, cn_callbacks, cast):
    payload = {"phone": "13800138000", "requested_for": in_(days=1).isoformat()}
    assert api_read.post(URL.format(cn_callbacks.pk), payload).status_code == 403
    assert api_anon.post(URL.format(cn_callbacks.pk), payload).status_code == 401
    social = create_inbox(actor=cast["admin"], name="Weibo", kind="social", team=None)
    wrong_kind = api.post(URL.format(social.pk), payload)
    assert wrong_kind.status_code == 422 and wrong_kind.json()["fields"] == {"inbox": "not a callback inbox"}
    assert api.post(URL.format(999999), payload).status_code == 404
    assert not CallbackRequest.objects.exists() and not Customer.objects.exists()


# --- public form ---------------------------------------------------------------------------------


def post_public(inbox, data, *, age=10, client=None):
    client = client or Client(enforce_csrf_checks=True)
    token = antispam.issue_token("callback", inbox.pk, issued_at=time.time() - age)
    return client.post(reverse("connect:callback", args=[inbox.pk]), {**data, antispam.TOKEN_FIELD: token})


def local_input(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%dT%H:%M")


def test_the_public_form_books_a_callback_in_the_inbox_time_zone(cn_callbacks):
    assert Client().get(reverse("connect:callback", args=[cn_callbacks.pk])).status_code == 200
    when = in_(days=2).replace(second=0, microsecond=0)
    response = post_public(
        cn_callbacks, {"name": "Wang", "phone": "13800138000", "requested_for": local_input(when)}
    )
    assert response.status_code == 200 and "We will call +8613800138000" in response.content.decode()
    assert CallbackRequest.objects.get().requested_for == when


def test_the_public_form_shows_errors_keeps_values_and_stores_nothing(cn_callbacks):
    response = post_public(cn_callbacks, {"name": "<b>Wang</b>", "phone": "", "requested_for": "soon"})
    body = response.content.decode()
    assert response.status_code == 422
    assert 'id="err-phone"' in body and 'id="err-requested_for"' in body
    assert "&lt;b&gt;Wang&lt;/b&gt;" in body and not CallbackRequest.objects.exists()
    empty = post_public(cn_callbacks, {}, age=0)  # sent at once: the missing fields are named, not "too fast"
    assert empty.status_code == 422 and "This field is required." in empty.content.decode()
    assert not Customer.objects.exists() and antispam.spam_count("callback", cn_callbacks.pk) == 0


def test_the_public_form_has_the_same_spam_protection(cn_callbacks):
    honeypot = post_public(cn_callbacks, {"phone": "13800138000", "requested_for": local_input(in_(days=1)),
                                          antispam.HONEYPOT_FIELD: "x"})  # fmt: skip
    assert honeypot.status_code == 200 and not CallbackRequest.objects.exists()
    fast = post_public(
        cn_callbacks, {"phone": "13800138000", "requested_for": local_input(in_(days=1))}, age=0
    )
    assert fast.status_code == 400 and not CallbackRequest.objects.exists()
    assert antispam.spam_count("callback", cn_callbacks.pk) == 2
    client = Client(REMOTE_ADDR="198.51.100.1")
    codes = [post_public(cn_callbacks, {"phone": "1380013800" + str(i), "requested_for": local_input(in_(days=1))},
                         client=client).status_code for i in range(11)]  # fmt: skip
    assert codes == [200] * 10 + [429] and CallbackRequest.objects.count() == 10
    assert Client().get(reverse("connect:callback", args=[999999])).status_code == 404


# --- the agents' list ----------------------------------------------------------------------------


def test_agents_see_their_own_and_their_teams_callbacks_only(cn_callbacks, en_callbacks, cast, login):
    li, bob = cast["agent_li"], cast["agent_bob"]
    cn = book(cn_callbacks)
    en = book(en_callbacks, phone="13900139000")
    CallbackRequest.objects.filter(pk=cn.pk).update(assignee=li)
    assert list(callbacks_for_user(li, view="mine")) == [cn]
    assert list(callbacks_for_user(li, view="team")) == [cn]
    assert list(callbacks_for_user(bob, view="all")) == [en]
    assert set(callbacks_for_user(cast["manager"], view="all")) == {cn, en}
    page = login("agent_bob").get(reverse("conversations:callbacks") + "?view=all").content.decode()
    assert f'data-id="{en.pk}"' in page and f'data-id="{cn.pk}"' not in page
    assert 'href="tel:+8613900139000"' in page
    assert (
        'href="/inbox/callbacks/"' in page and 'href="/inbox/forms/"' not in page
    )  # nav: agents build no forms
    assert login("nobody").get(reverse("conversations:callbacks")).status_code == 403


def test_the_callback_list_runs_a_fixed_number_of_queries(cn_callbacks, login, django_assert_max_num_queries):
    for i in range(10):
        book(cn_callbacks, phone=f"1380013800{i}", when=in_(hours=1 + i))
    client = login("manager")
    with django_assert_max_num_queries(8):
        response = client.get(reverse("conversations:callbacks") + "?view=all")
    assert response.content.decode().count('class="click-to-call"') == 10


# --- outcome -------------------------------------------------------------------------------------


def test_an_agent_records_the_outcome_and_it_is_noted_on_the_conversation(cn_callbacks, cast, login):
    callback = book(cn_callbacks)
    client = login("agent_li")
    response = client.post(reverse("conversations:callback_outcome", args=[callback.pk]),
                           {"status": "missed", "note": "voicemail"})  # fmt: skip
    assert response.status_code == 302
    callback.refresh_from_db()
    assert (callback.status, callback.assignee, callback.outcome) == (
        "missed",
        cast["agent_li"],
        "No answer: voicemail",
    )
    # a missed call stays on the list to try again, then is done
    do_record_callback_outcome(callback=callback, actor=cast["agent_li"], status="done", note="sorted")
    callback.refresh_from_db()
    assert callback.status == "done" and callback.outcome == "No answer: voicemail\nCalled back: sorted"
    notes = list(Message.objects.filter(direction="note").values_list("body_text", flat=True))
    assert notes == ["Callback: No answer\nvoicemail", "Callback: Called back\nsorted"]
    with pytest.raises(Conflict):
        do_record_callback_outcome(callback=callback, actor=cast["agent_li"], status="cancelled")
    with pytest.raises(ValidationFailed):
        do_record_callback_outcome(callback=book(cn_callbacks, phone="13900139000"), actor=cast["agent_li"],
                                   status="eaten")  # fmt: skip


def test_another_teams_agent_cannot_record_an_outcome_and_nothing_changes(cn_callbacks, cast, login):
    callback = book(cn_callbacks)
    response = login("agent_bob").post(reverse("conversations:callback_outcome", args=[callback.pk]),
                                       {"status": "done"})  # fmt: skip
    assert response.status_code == 404
    with pytest.raises(NotFound):
        do_record_callback_outcome(callback=callback, actor=cast["agent_bob"], status="done")
    callback.refresh_from_db()
    assert callback.status == CallbackStatus.SCHEDULED and callback.assignee is None
    assert not Message.objects.filter(direction="note").exists()
    assert login("analyst").post(reverse("conversations:callback_outcome", args=[callback.pk]),
                                 {"status": "done"}).status_code == 403  # fmt: skip


# --- reminders -----------------------------------------------------------------------------------


def test_a_reminder_is_published_to_the_assignee_ten_minutes_before_exactly_once(
    cn_callbacks, cast, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(callback_services, "publish", lambda group, payload: sent.append((group, payload)))
    soon = book(cn_callbacks, when=in_(minutes=20))
    later = book(cn_callbacks, phone="13900139000", when=in_(hours=3))
    CallbackRequest.objects.filter(pk=soon.pk).update(assignee=cast["agent_li"])
    with django_capture_on_commit_callbacks(execute=True):
        assert send_due_reminders() == 0  # 20 minutes ahead: not yet
    at = timezone.now() + dt.timedelta(minutes=11)
    with django_capture_on_commit_callbacks(execute=True):
        assert send_due_reminders(at) == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert send_due_reminders(at + dt.timedelta(minutes=1)) == 0  # idempotent: a rerun sends nothing
    assert [(g, p["type"], p["callback"], p["phone"]) for g, p in sent] == [
        (f"user.{cast['agent_li'].pk}", "callback.reminder", soon.pk, "+8613800138000")
    ]
    soon.refresh_from_db()
    later.refresh_from_db()
    assert soon.reminder_sent_at == at and later.reminder_sent_at is None


def test_an_unassigned_callback_is_announced_to_its_team_and_closed_ones_are_skipped(
    cn_callbacks, cast, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(callback_services, "publish", lambda group, payload: sent.append(group))
    open_one = book(cn_callbacks, when=in_(minutes=16))
    cancelled = book(cn_callbacks, phone="13900139000", when=in_(minutes=16))
    do_record_callback_outcome(callback=cancelled, actor=cast["manager"], status="cancelled")
    with django_capture_on_commit_callbacks(execute=True):
        assert send_due_reminders(timezone.now() + dt.timedelta(minutes=7)) == 1
    assert sent == [f"conversations.team.{open_one.conversation.team_id}"]


def test_the_periodic_task_sends_the_reminders(cn_callbacks, cast, monkeypatch):
    from ecrm.conversations.tasks import send_callback_reminders

    book(cn_callbacks, when=in_(minutes=16))
    CallbackRequest.objects.update(requested_for=in_(minutes=5))
    monkeypatch.setattr(callback_services, "publish", lambda group, payload: None)
    send_callback_reminders.call_local()
    assert CallbackRequest.objects.get().reminder_sent_at is not None


def test_the_conversation_page_shows_the_callback_panel_and_records_the_outcome_from_it(cn_callbacks, login):
    callback = book(cn_callbacks)
    client = login("agent_li")
    page = client.get(reverse("conversations:detail", args=[callback.conversation_id])).content.decode()
    assert f'data-callback="{callback.pk}"' in page and 'href="tel:+8613800138000"' in page
    response = client.post(reverse("conversations:callback_outcome", args=[callback.pk]),
                           {"status": "done", "back": "conversation"})  # fmt: skip
    assert response.url == reverse("conversations:detail", args=[callback.conversation_id])
    callback.refresh_from_db()
    assert callback.status == "done"
    page = client.get(response.url).content.decode()
    assert 'name="back"' not in page  # a closed callback has no outcome form


def test_the_list_marks_overdue_due_soon_and_reminded_callbacks(cn_callbacks, cast, login):
    overdue, soon, later = (book(cn_callbacks, phone=f"1380013800{i}") for i in range(3))
    CallbackRequest.objects.filter(pk=overdue.pk).update(requested_for=in_(minutes=-5))
    CallbackRequest.objects.filter(pk=soon.pk).update(requested_for=in_(minutes=8), reminder_sent_at=in_())
    CallbackRequest.objects.filter(pk=later.pk).update(requested_for=in_(hours=5))
    page = login("manager").get(reverse("conversations:callbacks") + "?view=all").content.decode()
    rows = {cb.pk: page.split(f'data-id="{cb.pk}"')[1].split("</tr>")[0] for cb in (overdue, soon, later)}
    assert "overdue" in rows[overdue.pk] and "due soon" not in rows[overdue.pk]
    assert "due soon" in rows[soon.pk] and "reminded" in rows[soon.pk]
    assert (
        "overdue" not in rows[later.pk]
        and "due soon" not in rows[later.pk]
        and "reminded" not in rows[later.pk]
    )
    assert (
        page.index(f'data-id="{overdue.pk}"')
        < page.index(f'data-id="{soon.pk}"')
        < page.index(f'data-id="{later.pk}"')
    )  # soonest first
