"""Console pages: the live dashboard, agents, queues, settings and the presence switch; who may see
and change what; the explanation panel on the conversation and ticket pages."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from ecrm.routing.models import AgentProfile, Queue, RoutingSettings, WorkItem
from ecrm.routing.services import enqueue, route_once

from . import factories as f

pytestmark = pytest.mark.django_db


def test_manager_sees_the_live_dashboard_with_queues_agents_and_sla_risk(
    login, cast, django_assert_max_num_queries
):
    q = Queue.objects.create(name="CN chat", channels=["chat"], sla_minutes=5)
    f.agent("zh_agent", skills={"lang:zh": 5}, capacity={"chat": 1}, first_name="Lina")
    convs = [f.incoming(f"你好 {i}") for i in range(3)]
    for c in convs:
        enqueue(kind="conversation", object_id=c.pk)
    route_once()  # one goes to the agent, two wait
    WorkItem.objects.filter(object_id=convs[2].pk).update(sla_due_at=timezone.now() - dt.timedelta(minutes=1))
    client = login("manager")
    with django_assert_max_num_queries(25):
        page = client.get("/routing/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f'data-queue="{q.pk}"' in html
    assert 'data-col="waiting">2<' in html and 'data-col="breached">1<' in html
    assert 'data-risk="breached"' in html
    assert 'data-load="1" data-capacity="1"' in html
    assert 'hx-trigger="every 5s"' in html
    # the htmx refresh returns the fragment only
    part = client.get("/routing/", HTTP_HX_REQUEST="true")
    assert part.status_code == 200 and b"<html" not in part.content and b'id="routing-queues"' in part.content


@pytest.mark.parametrize("username", ["agent_li", "marketer", "nobody"])
def test_agents_and_others_cannot_see_routing_pages(login, username):
    client = login(username)
    for url in ("/routing/", "/routing/agents/", "/routing/queues/", "/routing/settings/"):
        assert client.get(url).status_code == 403, url


def test_manager_edits_an_agents_skills_and_capacity(login, cast):
    client = login("manager")
    li = cast["agent_li"]
    resp = client.post(f"/routing/agents/{li.pk}/", {
        "skills": "lang:zh=5\ncat:tea=4", "capacity_chat": "2", "capacity_email": "8", "capacity_phone": "0",
        "capacity_ticket": "5", "routable": "1",
    })  # fmt: skip
    assert resp.status_code == 302
    p = AgentProfile.objects.get(user=li)
    assert p.skills == {"lang:zh": 5, "cat:tea": 4}
    assert p.capacity == {"chat": 2, "email": 8, "phone": 0, "ticket": 5}
    bad = client.post(f"/routing/agents/{li.pk}/", {"skills": "lang:zh=9", "capacity_chat": "2"})
    assert bad.status_code == 422 and b'data-field="skills"' in bad.content
    assert AgentProfile.objects.get(user=li).skills == {"lang:zh": 5, "cat:tea": 4}
    assert client.get("/routing/agents/").status_code == 200


def test_settings_page_changes_policy_and_weights_and_refuses_bad_values(login):
    client = login("manager")
    assert client.get("/routing/settings/").status_code == 200
    data = {"policy": "round_robin", "enabled": "1", "no_response_minutes": "7", "idle_away_minutes": "10",
            "idle_offline_minutes": "40", **{f"weight_{n}": "2" for n in RoutingSettings.WEIGHT_FIELDS}}  # fmt: skip
    assert client.post("/routing/settings/", data).status_code == 302
    s = RoutingSettings.objects.get()
    assert (s.policy, s.no_response_minutes, s.weight_skill) == ("round_robin", 7, 2.0)
    bad = client.post("/routing/settings/", {**data, "weight_skill": "-1", "policy": "magic"})
    assert bad.status_code == 422
    assert b'data-field="weight_skill"' in bad.content and b'data-field="policy"' in bad.content
    assert RoutingSettings.objects.get().policy == "round_robin"


def test_queue_crud(login):
    client = login("manager")
    resp = client.post("/routing/queues/", {"name": "VIP phone", "priority": "5", "channels": ["phone"],
                                             "sla_minutes": "3", "required_skills": "lang:zh=2"})  # fmt: skip
    assert resp.status_code == 302
    q = Queue.objects.get(name="VIP phone")
    assert (q.priority, q.channels, q.required_skills, q.sla_minutes) == (5, ["phone"], {"lang:zh": 2}, 3)
    dup = client.post("/routing/queues/", {"name": "VIP phone", "sla_minutes": "3"})
    assert dup.status_code == 422 and Queue.objects.count() == 1
    edit = client.post(f"/routing/queues/{q.pk}/", {"name": "VIP calls", "priority": "6", "sla_minutes": "4",
                                                    "channels": ["phone", "chat"]})  # fmt: skip
    assert edit.status_code == 302
    q.refresh_from_db()
    assert (q.name, q.channels) == ("VIP calls", ["chat", "phone"])
    assert client.post(f"/routing/queues/{q.pk}/", {"delete": "1"}).status_code == 302
    assert not Queue.objects.exists()


def test_agent_switches_own_presence_from_the_header(login, cast):
    client = login("agent_li")
    home = client.get("/")
    assert b'hx-get="/routing/presence/"' in home.content
    widget = client.get("/routing/presence/")
    assert widget.status_code == 200 and b'data-presence="offline"' in widget.content
    resp = client.post("/routing/presence/", {"presence": "online"}, HTTP_HX_REQUEST="true")
    assert resp.status_code == 200 and b'data-presence="online"' in resp.content
    assert AgentProfile.objects.get(user=cast["agent_li"]).presence == "online"
    assert client.post("/routing/presence/", {"presence": "nap"}).status_code == 422
    # people who take no work have no switch
    assert login("marketer").get("/routing/presence/").status_code == 403


def test_explanation_panel_on_the_conversation_and_ticket_pages(login, cast):
    from ecrm.customers.models import Customer
    from ecrm.service.services import do_create_ticket

    li = cast["agent_li"]
    f.profile(li, skills={"lang:zh": 4, "type:complaint": 5}, capacity={"chat": 3, "ticket": 5})
    conv = f.incoming("你好，我要退货")
    enqueue(kind="conversation", object_id=conv.pk)
    cust = Customer.objects.create(display_name="王芳", locale="zh-CN")
    ticket = do_create_ticket(actor=None, customer=cust, subject="投诉", type="complaint",
                              team=f.team("Service CN"))  # fmt: skip
    enqueue(kind="ticket", object_id=ticket.pk)
    assert route_once().assigned == 2
    client = login("agent_li")
    page = client.get(f"/inbox/{conv.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Assigned to Wei Li: speaks zh, chat skill" not in html  # no such skill: not invented
    assert "Assigned to Wei Li: speaks zh, 1 of 3 chats" in html
    assert 'data-factor="skill"' in html
    tpage = client.get(f"/service/{ticket.pk}/").content.decode()
    assert "Assigned to Wei Li: speaks zh, complaint skill 5/5, 1 of 5 tickets" in tpage


def test_refused_writes_change_nothing(login, cast):
    before = RoutingSettings.objects.get_or_create(pk=1)[0].policy
    agent = login("agent_li")
    assert agent.post("/routing/settings/", {"policy": "round_robin"}).status_code == 403
    assert agent.post("/routing/queues/", {"name": "Sneaky", "sla_minutes": "5"}).status_code == 403
    assert agent.post(f"/routing/agents/{cast['agent_bob'].pk}/", {"skills": "lang:en=5"}).status_code == 403
    assert RoutingSettings.objects.get().policy == before
    assert not Queue.objects.exists()
    assert not AgentProfile.objects.filter(user=cast["agent_bob"]).exists()
    # an analyst sees nothing of routing either, and has no presence switch
    analyst = login("analyst")
    assert analyst.get("/routing/").status_code == 403
    assert analyst.post("/routing/presence/", {"presence": "online"}).status_code == 403
    assert not AgentProfile.objects.filter(user=cast["analyst"]).exists()
