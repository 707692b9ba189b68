"""The contact-center seed also sets up routing: demo agents' skills, queues, and the open demo work
enqueued and routed within the agents' capacities."""

from __future__ import annotations

from django.core.management import call_command
from django.db.models import Count

from ecrm.routing.models import AgentProfile, Assignment, Queue, WorkItem


def test_seed_contact_center_sets_up_routing(db):
    call_command("seed_contact_center", conversations=20)
    li = AgentProfile.objects.get(user__username="agent_li")
    assert li.skills["lang:zh"] == 5 and li.capacity["chat"] == 3 and li.presence == "online"
    assert set(Queue.objects.values_list("name", flat=True)) == {
        "Callbacks",
        "Chat CN",
        "Chat EN",
        "Email",
        "Tickets",
    }
    assert WorkItem.objects.count() > 0
    routed = Assignment.objects.filter(ended_at__isnull=True).exclude(policy="manual")
    assert routed.exists()
    caps = {p.user_id: p.capacity for p in AgentProfile.objects.all()}
    for row in routed.values("agent_id", "channel").annotate(n=Count("id")):
        assert row["n"] <= caps[row["agent_id"]][row["channel"]]
    assert all(a.details.get("agent_name") for a in routed)
    # running it again adds nothing twice
    n = WorkItem.objects.count()
    call_command("seed_routing")
    assert WorkItem.objects.count() == n and Queue.objects.count() == 5
