"""The inbox list and the conversation page: views, filters, search, keyset pages, CSV export,
reply/note/status/assign, and the team visibility rule on every one of them."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from ecrm.conversations.channels import base as channel_base
from ecrm.conversations.models import Conversation, Inbox, Message
from ecrm.conversations.services import Inbound, receive_inbound
from ecrm.core.models import AuditLog, Team


class RecordingAdapter(channel_base.ChannelAdapter):
    kind = "email"
    can_reply = True
    sent: list[int] = []

    def send(self, message):
        self.sent.append(message.pk)
        return {"external_id": f"<out-{message.pk}@test>"}


@pytest.fixture
def adapter(monkeypatch):
    fake = RecordingAdapter()
    fake.sent = []
    monkeypatch.setitem(channel_base._ADAPTERS, "email", fake)
    return fake


@pytest.fixture
def teams(cast):
    return Team.objects.get(name="Service CN"), Team.objects.get(name="Service EN")


@pytest.fixture
def convs(teams, adapter):
    cn, en = teams
    cn_box = Inbox.objects.create(name="CN mail", kind="email", team=cn)
    en_box = Inbox.objects.create(name="EN mail", kind="email", team=en)

    def mk(inbox, email, subject, name, minutes):
        return receive_inbound(Inbound(
            inbox=inbox, identities=[("email", email)], subject=subject, body_text=f"Body of {subject}",
            traits={"first_name": name}, sent_at=timezone.now() - dt.timedelta(minutes=minutes),
        )).conversation  # fmt: skip

    return {
        "cn": mk(cn_box, "wang@example.cn", "物流查询 where is my tea", "Wang", 5),
        "en": mk(en_box, "oliver@example.co.uk", "Refund for broken cup", "Oliver", 3),
    }


def ids_on_page(response):
    return [c.pk for c in response.context["page"].conversations]


def test_agent_sees_only_their_teams_conversations_in_the_list(login, convs):
    client = login("agent_li")
    response = client.get(reverse("conversations:inbox"))
    assert response.status_code == 200
    assert ids_on_page(response) == [convs["cn"].pk]
    assert b"Refund for broken cup" not in response.content


def test_manager_sees_all_newest_first(login, convs):
    response = login("manager").get(reverse("conversations:inbox"))
    assert ids_on_page(response) == [convs["en"].pk, convs["cn"].pk]


def test_views_mine_and_unassigned(login, convs, cast):
    client = login("manager")
    assert ids_on_page(client.get(reverse("conversations:inbox"), {"view": "mine"})) == []
    assert ids_on_page(client.get(reverse("conversations:inbox"), {"view": "unassigned"})) == [
        convs["en"].pk,
        convs["cn"].pk,
    ]
    client.post(reverse("conversations:assign", args=[convs["cn"].pk]), {"how": "me"})
    assert ids_on_page(client.get(reverse("conversations:inbox"), {"view": "mine"})) == [convs["cn"].pk]
    assert ids_on_page(client.get(reverse("conversations:inbox"), {"view": "unassigned"})) == [convs["en"].pk]


def test_my_teams_view_and_status_filter(login, convs):
    client = login("agent_bob")
    assert ids_on_page(client.get(reverse("conversations:inbox"), {"view": "teams"})) == [convs["en"].pk]
    assert ids_on_page(client.get(reverse("conversations:inbox"), {"status": "resolved"})) == []
    client.post(reverse("conversations:status", args=[convs["en"].pk]), {"status": "resolved"})
    assert ids_on_page(client.get(reverse("conversations:inbox"), {"status": "resolved"})) == [convs["en"].pk]
    assert ids_on_page(client.get(reverse("conversations:inbox"))) == []


def test_bad_filters_give_a_readable_error_not_a_500(login, convs):
    response = login("manager").get(reverse("conversations:inbox"), {"status": "bogus", "channel": "fax"})
    assert response.status_code == 200
    assert response.context["error"].fields == {
        "status": "must be one of open, pending, resolved, any",
        "channel": "must be one of email, chat, webform, callback, phone, social",
    }
    assert b"Some filters are not valid." in response.content


def test_search_by_name_email_and_subject_respects_visibility(login, convs):
    client = login("manager")
    url = reverse("conversations:inbox")
    assert ids_on_page(client.get(url, {"q": "oliver@example.co.uk"})) == [convs["en"].pk]
    assert ids_on_page(client.get(url, {"q": "refund"})) == [convs["en"].pk]
    assert ids_on_page(client.get(url, {"q": "物流"})) == [convs["cn"].pk]
    assert ids_on_page(client.get(url, {"q": "Wang"})) == [convs["cn"].pk]
    agent = login("agent_li")
    assert ids_on_page(agent.get(url, {"q": "oliver@example.co.uk"})) == []
    assert ids_on_page(agent.get(url, {"q": "refund"})) == []


def test_keyset_pages_cover_every_row_once(login, convs, settings):
    settings.ECRM_PAGE_SIZE = 1
    client = login("manager")
    first = client.get(reverse("conversations:inbox"))
    cursor = first.context["page"].next_cursor
    assert ids_on_page(first) == [convs["en"].pk] and cursor
    second = client.get(reverse("conversations:inbox"), {"after": cursor})
    assert ids_on_page(second) == [convs["cn"].pk]
    assert second.context["page"].next_cursor is None
    bad = client.get(reverse("conversations:inbox"), {"after": "garbage"})
    assert bad.context["error"].fields == {"after": "invalid cursor"}


def test_list_query_count_is_flat(login, convs, django_assert_max_num_queries, teams, adapter):
    cn_box = Inbox.objects.get(name="CN mail")
    for i in range(30):
        receive_inbound(Inbound(inbox=cn_box, identities=[("email", f"c{i}@example.com")], subject=f"s{i}",
                                body_text="x"))  # fmt: skip
    client = login("agent_li")
    with django_assert_max_num_queries(12):
        response = client.get(reverse("conversations:inbox"))
    assert len(ids_on_page(response)) == 31


def test_csv_export_is_scoped_and_neutralises_formulas(login, convs):
    Conversation.objects.filter(pk=convs["cn"].pk).update(subject='=HYPERLINK("http://evil")')
    body = login("agent_li").get(reverse("conversations:export")).content.decode("utf-8-sig")
    lines = body.strip().splitlines()
    assert len(lines) == 2  # header + the CN conversation only
    assert "Refund for broken cup" not in body
    assert "'=HYPERLINK" in lines[1]


def test_row_fragment_is_refused_for_another_team_and_empty_when_filtered_out(login, convs):
    client = login("agent_li")
    assert client.get(reverse("conversations:row", args=[convs["en"].pk])).status_code == 404
    ok = client.get(reverse("conversations:row", args=[convs["cn"].pk]))
    assert ok.status_code == 200 and f'id="conv-{convs["cn"].pk}"'.encode() in ok.content
    gone = client.get(reverse("conversations:row", args=[convs["cn"].pk]), {"status": "resolved"})
    assert gone.content == b""


# --- the conversation page -------------------------------------------------------------------------


def test_conversation_page_contract_and_mark_read(login, convs):
    conv = convs["cn"]
    assert Conversation.objects.get(pk=conv.pk).unread == 1
    response = login("agent_li").get(reverse("conversations:detail", args=[conv.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert '<form id="reply-form"' in html and 'name="body"' in html and ">Send<" in html
    assert '<div id="messages"' in html
    msg = Message.objects.get(conversation=conv)
    assert f'<article class="message message-in" data-id="{msg.pk}"' in html
    assert Conversation.objects.get(pk=conv.pk).unread == 0
    assert Message.objects.get(pk=msg.pk).read_at is not None


def test_another_teams_conversation_is_404_and_actions_change_nothing(login, convs):
    conv = convs["en"]
    client = login("agent_li")
    before = Conversation.objects.filter(pk=conv.pk).values().get()
    n_messages, n_audit = Message.objects.count(), AuditLog.objects.count()
    assert client.get(reverse("conversations:detail", args=[conv.pk])).status_code == 404
    assert client.get(reverse("conversations:messages", args=[conv.pk])).status_code == 404
    for name, data in [("reply", {"body": "hi"}), ("note", {"body": "x"}), ("status", {"status": "resolved"}),
                       ("assign", {"how": "me"})]:  # fmt: skip
        assert client.post(reverse(f"conversations:{name}", args=[conv.pk]), data).status_code == 404
    assert Conversation.objects.filter(pk=conv.pk).values().get() == before
    assert (Message.objects.count(), AuditLog.objects.count()) == (n_messages, n_audit)


def test_nobody_is_refused_the_inbox(login, convs):
    client = login("nobody")
    assert client.get(reverse("conversations:inbox")).status_code == 403
    assert client.get(reverse("conversations:detail", args=[convs["cn"].pk])).status_code == 403
    assert (
        client.post(reverse("conversations:reply", args=[convs["cn"].pk]), {"body": "x"}).status_code == 403
    )
    assert Message.objects.filter(conversation=convs["cn"]).count() == 1


def test_reply_is_sent_in_the_channel_and_assigns_the_replier(
    login, convs, adapter, cast, django_capture_on_commit_callbacks
):
    conv = convs["cn"]
    client = login("agent_li")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("conversations:reply", args=[conv.pk]), {"body": "您好, it ships today"}
        )
    assert response.status_code == 302
    out = Message.objects.get(conversation=conv, direction="out")
    assert (out.body_text, out.author, out.status, out.external_id) == (
        "您好, it ships today",
        cast["agent_li"],
        "sent",
        f"<out-{out.pk}@test>",
    )
    assert adapter.sent == [out.pk]
    assert Conversation.objects.get(pk=conv.pk).assignee == cast["agent_li"]


def test_empty_reply_by_fetch_gets_a_field_error_and_stores_nothing(login, convs):
    response = login("agent_li").post(reverse("conversations:reply", args=[convs["cn"].pk]), {"body": "  "},
                                      HTTP_X_REQUESTED_WITH="fetch")  # fmt: skip
    assert response.status_code == 422
    assert response.json()["fields"] == {"body": "This field is required."}
    assert Message.objects.filter(conversation=convs["cn"]).count() == 1


def test_note_with_mention_and_messages_fragment(login, convs, cast):
    conv = convs["cn"]
    client = login("agent_li")
    first = Message.objects.get(conversation=conv)
    response = client.post(reverse("conversations:note", args=[conv.pk]), {"body": "@manager please check <b>"},
                           HTTP_X_REQUESTED_WITH="fetch")  # fmt: skip
    assert response.json() == {"ok": True, "message": "Note added."}
    note = Message.objects.get(conversation=conv, direction="note")
    assert note.metadata["mentions"] == [cast["manager"].pk]
    fragment = client.get(
        reverse("conversations:messages", args=[conv.pk]), {"after": first.pk}
    ).content.decode()
    assert f'<article class="message message-note" data-id="{note.pk}"' in fragment
    assert "&lt;b&gt;" in fragment and "<b>" not in fragment
    assert f'data-id="{first.pk}"' not in fragment


def test_agent_cannot_hand_work_to_a_colleague_but_a_manager_can(login, convs, cast):
    conv = convs["cn"]
    agent = login("agent_li")
    response = agent.post(reverse("conversations:assign", args=[conv.pk]), {"assignee": cast["agent_bob"].pk})
    assert response.status_code == 403
    assert Conversation.objects.get(pk=conv.pk).assignee is None
    manager = login("manager")
    manager.post(reverse("conversations:assign", args=[conv.pk]), {"assignee": cast["agent_li"].pk})
    assert Conversation.objects.get(pk=conv.pk).assignee == cast["agent_li"]
    # agent_bob is not on Service CN: refused with a field error, nothing changed
    response = manager.post(reverse("conversations:assign", args=[conv.pk]), {"assignee": cast["agent_bob"].pk},
                            HTTP_X_REQUESTED_WITH="fetch")  # fmt: skip
    assert response.status_code == 422 and response.json()["fields"] == {"assignee": "not on team"}
    assert Conversation.objects.get(pk=conv.pk).assignee == cast["agent_li"]


def test_round_robin_takes_turns_in_the_team(login, convs, cast, teams):
    conv = convs["cn"]
    manager = login("manager")
    manager.post(reverse("conversations:assign", args=[conv.pk]), {"how": "round_robin"})
    first = Conversation.objects.get(pk=conv.pk).assignee
    assert first is not None and first.teams.filter(pk=teams[0].pk).exists()


def test_conversation_page_query_count(login, convs, django_assert_max_num_queries, cast):
    conv = convs["cn"]
    client = login("agent_li")
    for i in range(10):
        client.post(reverse("conversations:note", args=[conv.pk]), {"body": f"note {i}"})
    client.get(reverse("conversations:detail", args=[conv.pk]))  # mark read first
    with django_assert_max_num_queries(30):
        response = client.get(reverse("conversations:detail", args=[conv.pk]))
    assert len(response.context["thread"]) == 11


def test_html_body_is_only_in_a_sandboxed_frame(login, teams, adapter):
    cn_box = Inbox.objects.create(name="CN mail 2", kind="email", team=teams[0])
    conv = receive_inbound(Inbound(
        inbox=cn_box, identities=[("email", "h@example.com")], subject="html",
        body_html='<p onclick="x()">Hi<script>alert(1)</script><img src="https://tracker.example/p.gif"></p>',
    )).conversation  # fmt: skip
    html = login("agent_li").get(reverse("conversations:detail", args=[conv.pk])).content.decode()
    assert '<iframe class="message-frame" sandbox title=' in html
    assert "alert(1)" not in html and "x()" not in html
    assert "img-src data: cid:;" in html  # remote images blocked until "Show images"
    assert "data-show-images" in html


def test_demo_seed_creates_conversations_through_the_services(cast):
    from ecrm.conversations.demo import seed_conversations

    assert seed_conversations(8) == 8
    assert Conversation.objects.count() == 8
    assert set(Conversation.objects.values_list("channel", flat=True)) == {"email", "chat", "webform"}
    assert Message.objects.filter(direction="in").count() == 8


def test_any_status_pages_merge_statuses_and_keep_rows_without_messages(login, convs, settings, adapter):
    Conversation.objects.filter(pk=convs["cn"].pk).update(status="resolved")
    silent = Conversation.objects.create(inbox=convs["en"].inbox, channel="email", customer=convs["en"].customer,
                                         team=convs["en"].team, subject="no messages yet")  # fmt: skip
    settings.ECRM_PAGE_SIZE = 1
    client = login("manager")
    seen, cursor = [], None
    for _ in range(5):
        params = {"status": "any", **({"after": cursor} if cursor else {})}
        response = client.get(reverse("conversations:inbox"), params)
        seen += ids_on_page(response)
        cursor = response.context["page"].next_cursor
        if not cursor:
            break
    assert sorted(seen) == sorted([convs["en"].pk, convs["cn"].pk, silent.pk]) and len(seen) == 3
    assert seen.index(convs["en"].pk) < seen.index(convs["cn"].pk)  # newest activity first
