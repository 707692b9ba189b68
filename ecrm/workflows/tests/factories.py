"""Builders for workflow tests: rules through the service (validated, cache dropped), and records."""

from __future__ import annotations

from typing import Any

from ecrm.core.models import Team, User
from ecrm.customers.models import Customer, Identity
from ecrm.workflows.models import Rule
from ecrm.workflows.services import do_create_rule


def rule(
    name: str = "Rule", *, triggers=("ticket.created",), conditions=None, actions=None, **extra: Any
) -> Rule:
    admin = User.objects.get(username="admin")
    data = {
        "name": name,
        "triggers": list(triggers),
        "conditions": conditions or {},
        "actions": actions or [{"type": "add_tag", "target": "ticket", "tag": "auto"}],
        **extra,
    }
    return do_create_rule(actor=admin, data=data)


def customer(name: str = "Wang Fang", email: str | None = "wang@example.com", **fields: Any) -> Customer:
    c = Customer.objects.create(display_name=name, email=email, search_name=name.lower(), **fields)
    if email:
        Identity.objects.create(customer=c, kind="email", value=email)
    return c


def team_with(name: str, *usernames: str) -> Team:
    team, _ = Team.objects.get_or_create(name=name)
    for username in usernames:
        User.objects.get(username=username).teams.add(team)
    return team
