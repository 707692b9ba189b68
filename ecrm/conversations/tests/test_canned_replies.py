"""Canned replies: variables filled in from a restricted context, unknown variables and tags refused
with a clear error, team scoping for use and management."""

from __future__ import annotations

import pytest
from django.urls import reverse

from ecrm.conversations.canned import do_save_canned_reply, render_canned_reply
from ecrm.conversations.models import CannedReply, Inbox
from ecrm.conversations.services import Inbound, receive_inbound
from ecrm.core.exceptions import PermissionDenied, ValidationFailed
from ecrm.core.models import Team
from ecrm.customers.tests.factories import make_order


@pytest.fixture
def teams(cast):
    return Team.objects.get(name="Service CN"), Team.objects.get(name="Service EN")


@pytest.fixture
def conv(teams):
    inbox = Inbox.objects.create(name="CN chat", kind="chat", team=teams[0])
    return receive_inbound(Inbound(inbox=inbox, identities=[("email", "lina@example.cn")], body_text="hi",
                                   traits={"first_name": "丽娜", "last_name": "王"})).conversation  # fmt: skip


def test_variables_are_filled_in_for_the_customer(conv, cast):
    make_order(conv.customer, number="SO-240718", total="459.00", days_ago=4, status="shipped")
    canned = do_save_canned_reply(
        actor=cast["manager"], canned=None, name="Order status",
        body="Hi {{ customer.first_name }}, order {{ last_order.number }} is {{ last_order.status|lower }}. "
             "<b>{{ agent.name }}</b>",
    )  # fmt: skip
    text = render_canned_reply(canned, conversation=conv, agent=cast["agent_li"])
    name = cast["agent_li"].get_full_name() or "agent_li"
    assert text == f"Hi 丽娜, order SO-240718 is shipped. <b>{name}</b>"  # plain text: not escaped here


def test_no_order_gives_empty_values_and_default_filter_works(conv, cast):
    canned = CannedReply.objects.create(name="x", body="{{ last_order.number|default:'your order' }} ok")
    assert render_canned_reply(canned, conversation=conv, agent=cast["agent_li"]) == "your order ok"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("{{ customer.password }}", "unknown variable {{ customer.password }}"),
        ("{{ settings.SECRET_KEY }}", "unknown variable {{ settings.SECRET_KEY }}"),
        ("{% if customer.name %}x{% endif %}", "only {{ variables }} are allowed, not {% tags %}"),
        ("{{ customer.name|safe }}", "filter “safe” is not allowed"),
    ],
)
def test_unknown_variables_tags_and_filters_are_refused_and_nothing_saved(cast, body, problem):
    with pytest.raises(ValidationFailed) as err:
        do_save_canned_reply(actor=cast["manager"], canned=None, name="bad", body=body)
    assert err.value.fields == {"body": problem}
    assert CannedReply.objects.count() == 0


def test_template_syntax_error_is_a_field_error(cast):
    with pytest.raises(ValidationFailed) as err:
        do_save_canned_reply(
            actor=cast["manager"], canned=None, name="bad", body="{{ customer.name|nosuchfilter }}"
        )
    assert "body" in err.value.fields
    assert CannedReply.objects.count() == 0


def test_agents_manage_only_their_teams_replies(cast, teams):
    cn, en = teams
    mine = do_save_canned_reply(actor=cast["agent_li"], canned=None, name="CN", body="你好", team=cn.pk)
    assert mine.team == cn
    for kwargs in ({"team": en.pk}, {"team": None}):
        with pytest.raises(PermissionDenied):
            do_save_canned_reply(actor=cast["agent_li"], canned=None, name="no", body="x", **kwargs)
    shared = do_save_canned_reply(actor=cast["manager"], canned=None, name="Shared", body="Hello")
    with pytest.raises(PermissionDenied):
        do_save_canned_reply(actor=cast["agent_li"], canned=shared, name="changed", body="x")
    assert CannedReply.objects.get(pk=shared.pk).name == "Shared"
    assert sorted(CannedReply.objects.values_list("name", flat=True)) == ["CN", "Shared"]


def test_pages_list_use_and_refuse(login, cast, conv, teams):
    cn, en = teams
    CannedReply.objects.create(name="Shared hello", body="Hello {{ customer.first_name }}")
    en_reply = CannedReply.objects.create(name="EN only", body="Hi", team=en)
    client = login("agent_li")
    page = client.get(reverse("conversations:canned_list")).content.decode()
    assert "Shared hello" in page and "EN only" not in page
    shared = CannedReply.objects.get(name="Shared hello")
    used = client.get(reverse("conversations:canned_render", args=[conv.pk, shared.pk]))
    assert used.json() == {"text": "Hello 丽娜"}
    assert client.get(reverse("conversations:canned_render", args=[conv.pk, en_reply.pk])).status_code == 404
    # an agent may not delete a shared reply: refused, still there
    assert client.post(reverse("conversations:canned_delete", args=[shared.pk])).status_code == 403
    assert CannedReply.objects.filter(pk=shared.pk).exists()
    # a bad variable from the form: 422 with the field error, nothing stored
    response = client.post(reverse("conversations:canned_new"),
                           {"name": "x", "body": "{{ customer.secret }}", "team": str(cn.pk)})  # fmt: skip
    assert response.status_code == 422
    assert "unknown variable {{ customer.secret }}" in response.content.decode()
    assert CannedReply.objects.count() == 2
    ok = client.post(
        reverse("conversations:canned_new"), {"name": "Thanks", "body": "Thanks!", "team": str(cn.pk)}
    )
    assert ok.status_code == 302 and CannedReply.objects.get(name="Thanks").team == cn


def test_inbox_settings_admin_only_with_field_errors(login, cast, teams):
    assert login("manager").get(reverse("conversations:inbox_settings")).status_code == 403
    client = login("admin")
    response = client.post(reverse("conversations:inbox_settings_new"),
                           {"name": "", "kind": "chat", "team": "", "config": "[1]"})  # fmt: skip
    assert response.status_code == 422
    html = response.content.decode()
    assert "This field is required." in html and "The settings must be a JSON object." in html
    assert Inbox.objects.count() == 0
    ok = client.post(reverse("conversations:inbox_settings_new"),
                     {"name": "Shop chat", "kind": "chat", "team": str(teams[0].pk), "config": "{}",
                      "is_active": "on"})  # fmt: skip
    assert ok.status_code == 302
    inbox = Inbox.objects.get(name="Shop chat")
    assert (inbox.kind, inbox.team) == ("chat", teams[0])
    edit = client.post(reverse("conversations:inbox_settings_edit", args=[inbox.pk]),
                       {"name": "Shop chat CN", "kind": "chat", "team": "", "config": "{}", "auto_assign": "on",
                        "is_active": "on"})  # fmt: skip
    assert edit.status_code == 302
    inbox.refresh_from_db()
    assert (inbox.name, inbox.team, inbox.auto_assign) == ("Shop chat CN", None, True)
