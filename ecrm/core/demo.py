"""The demo cast: one user per role, two agents on different teams, and one who may see nothing.
Tests use the same cast (see tests/conftest.py)."""

from __future__ import annotations

from django.db import transaction

from .models import Role, Team, User

DEMO_PASSWORD = "ecrm-demo-2026"  # noqa: S105 - demo data only, printed by `make run`

CAST = [
    # username, role, first name, last name, team
    ("admin", Role.ADMIN, "Alice", "Admin", None),
    ("manager", Role.MANAGER, "Mia", "Wang", "Service CN"),
    ("agent_li", Role.AGENT, "Wei", "Li", "Service CN"),
    ("agent_bob", Role.AGENT, "Bob", "Smith", "Service EN"),
    ("marketer", Role.MARKETER, "Marta", "Chen", "Marketing"),
    ("analyst", Role.ANALYST, "Andy", "Zhao", None),
    ("nobody", Role.NONE, "Nora", "Body", None),
]


@transaction.atomic
def ensure_demo_users(password: str = DEMO_PASSWORD) -> list[User]:
    users = []
    for username, role, first, last, team_name in CAST:
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User(
                username=username,
                role=role,
                first_name=first,
                last_name=last,
                email=f"{username}@example.com",
            )
            user.is_staff = user.is_superuser = role == Role.ADMIN
            user.set_password(password)
            user.save()
        if team_name:
            team, _ = Team.objects.get_or_create(name=team_name)
            user.teams.add(team)
        users.append(user)
    return users
