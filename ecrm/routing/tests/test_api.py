"""The routing REST API: queues, work items and agents for integrations; presence set by a write
key or by a console user for themselves; validation and scope errors with stable codes."""

from __future__ import annotations

import pytest

from ecrm.routing.models import AgentProfile, Queue
from ecrm.routing.services import enqueue, route_once

from . import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(cast):
    q = Queue.objects.create(name="Chat", channels=["chat"], sla_minutes=10, priority=1)
    agent = f.agent("api_agent", skills={"lang:en": 4}, capacity={"chat": 1})
    convs = [f.incoming(f"hello {i}") for i in range(2)]
    for c in convs:
        enqueue(kind="conversation", object_id=c.pk)
    route_once()
    return {"queue": q, "agent": agent, "convs": convs}


def test_read_endpoints(api_read, setup, django_assert_max_num_queries):
    api = api_read
    queues = api.get("/api/v1/routing/queues").json()
    row = next(r for r in queues if r["id"] == setup["queue"].pk)
    assert (row["waiting"], row["assigned"], row["channels"], row["sla_minutes"]) == (1, 1, ["chat"], 10)
    with django_assert_max_num_queries(6):
        page = api.get("/api/v1/routing/items", status="assigned").json()
    assert page["count"] == 1
    item = page["items"][0]
    assert item["assignment"]["agent_id"] == setup["agent"].pk
    assert "speaks en" in item["assignment"]["reasons"] and item["assignment"]["policy"] == "optimal"
    assert api.get("/api/v1/routing/items", status="waiting").json()["count"] == 1
    agents = {a["id"]: a for a in api.get("/api/v1/routing/agents").json()}
    a = agents[setup["agent"].pk]
    assert (a["presence"], a["load"], a["capacity"], a["skills"]) == (
        "online",
        {"chat": 1},
        {"chat": 1},
        {"lang:en": 4},
    )


def test_presence_is_set_by_a_write_key_and_offline_hands_work_back(
    api, api_read, setup, django_capture_on_commit_callbacks
):
    agent = setup["agent"]
    assert api_read.post(f"/api/v1/routing/agents/{agent.pk}/presence",
                                            {"presence": "offline"}).status_code == 403  # fmt: skip
    bad = api.post(f"/api/v1/routing/agents/{agent.pk}/presence", {"presence": "asleep"})
    assert (
        bad.status_code == 422
        and bad.json()["code"] == "validation_failed"
        and "presence" in bad.json()["fields"]
    )
    assert AgentProfile.objects.get(user=agent).presence == "online"
    with django_capture_on_commit_callbacks(execute=True):
        ok = api.post(f"/api/v1/routing/agents/{agent.pk}/presence", {"presence": "offline"})
    assert ok.status_code == 200 and ok.json()["presence"] == "offline"
    p = AgentProfile.objects.get(user=agent)
    assert (p.presence, p.presence_source) == ("offline", "api")
    assert api_read.get("/api/v1/routing/items", status="assigned").json()["count"] == 0
    assert api_read.get(f"/api/v1/routing/agents/{agent.pk}/presence").json()["presence"] == "offline"
    missing = api.post("/api/v1/routing/agents/999999/presence", {"presence": "online"})
    assert missing.status_code == 404


def test_track_keys_and_agents_cannot_read_and_agents_set_only_their_own(
    api, api_anon, api_keys, setup, client, cast
):
    assert type(api)(api_keys["track"]).get("/api/v1/routing/queues").status_code == 403
    assert api_anon.get("/api/v1/routing/queues").status_code == 401
    client.force_login(cast["agent_li"])
    assert client.get("/api/v1/routing/queues").status_code == 403
    mine = client.post(f"/api/v1/routing/agents/{cast['agent_li'].pk}/presence", {"presence": "online"},
                       content_type="application/json")  # fmt: skip
    assert mine.status_code == 200
    other = client.post(f"/api/v1/routing/agents/{setup['agent'].pk}/presence", {"presence": "offline"},
                        content_type="application/json")  # fmt: skip
    assert other.status_code == 403
    assert AgentProfile.objects.get(user=setup["agent"]).presence == "online"


def test_openapi_documents_the_routing_endpoints(client):
    schema = client.get("/api/openapi.json")
    paths = schema.json()["paths"]
    for p in ("/api/v1/routing/queues", "/api/v1/routing/items", "/api/v1/routing/agents",
              "/api/v1/routing/agents/{user_id}/presence"):  # fmt: skip
        assert p in paths, p
