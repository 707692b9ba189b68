"""The inbox REST API: list/detail with team visibility for console sessions, key scopes, writes
acting as the key's owner, field-level 422 errors, and refusals that change nothing."""

from __future__ import annotations

import orjson
import pytest
from django.test import Client

from ecrm.conversations.channels import base as channel_base
from ecrm.conversations.models import Conversation, Inbox, Message
from ecrm.conversations.services import Inbound, receive_inbound
from ecrm.core.models import ApiKey, AuditLog, Team
from ecrm.core.services import do_create_api_key

URL = "/api/v1/conversations/"


class QuietAdapter(channel_base.ChannelAdapter):
    kind = "email"
    can_reply = True

    def send(self, message):
        return {}


@pytest.fixture
def convs(cast, monkeypatch):
    monkeypatch.setitem(channel_base._ADAPTERS, "email", QuietAdapter())
    out = {}
    for key, team_name in (("cn", "Service CN"), ("en", "Service EN")):
        inbox = Inbox.objects.create(name=f"{key} mail", kind="email", team=Team.objects.get(name=team_name))
        out[key] = receive_inbound(Inbound(inbox=inbox, identities=[("email", f"{key}@example.com")],
                                           subject=f"subject {key}", body_text=f"hello {key}",
                                           body_html=f"<p>hello {key}</p>")).conversation  # fmt: skip
    return out


def session(client: Client, user):
    client.force_login(user)
    return client


def post(client, path, data):
    return client.post(path, orjson.dumps(data), content_type="application/json")


def test_session_agent_lists_and_reads_only_their_team(client, cast, convs):
    c = session(client, cast["agent_li"])
    body = c.get(URL).json()
    assert [i["id"] for i in body["items"]] == [convs["cn"].pk] and body["next_cursor"] is None
    assert c.get(URL, {"q": "en@example.com"}).json()["items"] == []
    assert c.get(f"{URL}{convs['en'].pk}").status_code == 404
    detail = c.get(f"{URL}{convs['cn'].pk}").json()
    assert [(m["direction"], m["body_text"], m["body_html"]) for m in detail["messages"]] == [
        ("in", "hello cn", "<p>hello cn</p>")
    ]


def test_read_key_lists_everything_with_keyset_pages(api_read, convs):
    first = api_read.get(URL, limit=1).json()
    assert [i["id"] for i in first["items"]] == [convs["en"].pk]
    second = api_read.get(URL, limit=1, after=first["next_cursor"]).json()
    assert [i["id"] for i in second["items"]] == [convs["cn"].pk] and second["next_cursor"] is None


def test_bad_query_gives_field_errors(api_read, convs):
    response = api_read.get(URL, status="closed", limit=0)
    assert response.status_code == 422
    assert set(response.json()["fields"]) == {"query.status", "query.limit"}
    response = api_read.get(URL, channel="fax")
    assert response.status_code == 422 and response.json()["fields"] == {
        "channel": "must be one of email, chat, webform, callback, phone, social"
    }
    assert api_read.get(URL, view="mine").json()["fields"] == {"view": "needs a signed-in user"}


def test_read_key_may_not_write_and_nothing_changes(api_read, convs):
    conv = convs["cn"]
    before = Message.objects.count()
    response = api_read.post(f"{URL}{conv.pk}/reply", {"body": "hi"})
    assert response.status_code == 403 and response.json()["code"] == "read_only_key"
    assert Message.objects.count() == before


def test_write_key_acts_as_its_owner_with_their_visibility(cast, convs):
    from conftest import ApiClient

    _, raw = do_create_api_key(name="li's bot", scope="write", actor=None)
    ApiKey.objects.filter(name="li's bot").update(created_by=cast["agent_li"])
    bot = ApiClient(raw)
    response = bot.post(f"{URL}{convs['cn'].pk}/reply", {"body": "On its way"})
    assert response.status_code == 201
    assert response.json()["author"]["username"] == "agent_li"
    # the owner cannot see the EN conversation, so neither can their key's writes
    before = Conversation.objects.filter(pk=convs["en"].pk).values().get()
    assert bot.post(f"{URL}{convs['en'].pk}/status", {"status": "resolved"}).status_code == 404
    assert Conversation.objects.filter(pk=convs["en"].pk).values().get() == before


def test_key_without_owner_cannot_write(api, convs):
    response = api.post(f"{URL}{convs['cn'].pk}/note", {"body": "x"})  # wrong path: 404/405 first
    assert response.status_code in (404, 405)
    response = api.post(f"{URL}{convs['cn'].pk}/notes", {"body": "x"})
    assert response.status_code == 403 and response.json()["code"] == "key_without_owner"


def test_session_writes_reply_note_status_assign(client, cast, convs):
    c = session(client, cast["agent_li"])
    conv = convs["cn"]
    assert post(c, f"{URL}{conv.pk}/reply", {"body": "您好"}).status_code == 201
    note = post(c, f"{URL}{conv.pk}/notes", {"body": "@manager look"})
    assert note.status_code == 201 and note.json()["direction"] == "note"
    assert post(c, f"{URL}{conv.pk}/status", {"status": "pending"}).json()["status"] == "pending"
    assigned = post(c, f"{URL}{conv.pk}/assign", {"assignee": None})
    assert assigned.status_code == 200 and assigned.json()["assignee"] is None
    assert list(Message.objects.filter(conversation=conv).values_list("direction", flat=True)) == [
        "in",
        "out",
        "note",
    ]


def test_field_level_errors_on_writes(client, cast, convs):
    c = session(client, cast["manager"])
    conv = convs["cn"]
    n_messages, n_audit = Message.objects.count(), AuditLog.objects.count()
    response = post(c, f"{URL}{conv.pk}/reply", {"body": ""})
    assert response.status_code == 422 and "body" in response.json()["fields"]
    assert post(c, f"{URL}{conv.pk}/status", {"status": "closed"}).json()["fields"].keys() == {"status"}
    response = post(c, f"{URL}{conv.pk}/assign", {"assignee": cast["agent_bob"].pk})
    assert response.status_code == 422 and response.json()["fields"] == {"assignee": "not on team"}
    response = post(c, f"{URL}{conv.pk}/assign", {"assignee": 999999})
    assert response.json()["fields"] == {"assignee": "unknown user"}
    assert (Message.objects.count(), AuditLog.objects.count()) == (n_messages, n_audit)
    assert Conversation.objects.get(pk=conv.pk).assignee is None


def test_nobody_and_anonymous_are_refused(client, cast, convs, api_anon):
    assert api_anon.get(URL).status_code == 401
    c = session(client, cast["nobody"])
    assert c.get(URL).status_code == 403
    assert post(c, f"{URL}{convs['cn'].pk}/reply", {"body": "x"}).status_code == 403
    assert Message.objects.filter(direction="out").count() == 0


def test_list_query_count(client, cast, convs, django_assert_max_num_queries):
    c = session(client, cast["manager"])
    for i in range(20):
        receive_inbound(
            Inbound(inbox=convs["cn"].inbox, identities=[("email", f"x{i}@example.com")], body_text="x")
        )
    with django_assert_max_num_queries(8):
        body = c.get(URL).json()
    assert len(body["items"]) == 22
