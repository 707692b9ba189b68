"""Which agents are online for live chat.

An agent is online while a console page of theirs holds the agent chat socket (`/ws/chat/agents/`,
opened by static/ecrm/chat/agent.js) and pings it: every open socket keeps an entry with an expiry in
the cache (shared by all processes when REDIS_URL is set). A closed tab removes its entry; a crashed
browser's entry simply expires. The widget shows the offline form when no member of the inbox's team
is online.
"""

from __future__ import annotations

import time

from django.core.cache import cache

PRESENCE_TTL = 60  # seconds; agent.js pings every 20 s


def _key(user_id: int) -> str:
    return f"chat.presence.{user_id}"


def touch_agent(user_id: int, connection: str, *, ttl: int = PRESENCE_TTL) -> None:
    """Mark one connection of an agent as alive for `ttl` seconds."""
    now = time.time()
    entries = {c: exp for c, exp in (cache.get(_key(user_id)) or {}).items() if exp > now}
    entries[connection] = now + ttl
    cache.set(_key(user_id), entries, timeout=ttl)


def drop_agent(user_id: int, connection: str) -> None:
    now = time.time()
    entries = {c: exp for c, exp in (cache.get(_key(user_id)) or {}).items() if exp > now and c != connection}
    if entries:
        cache.set(_key(user_id), entries, timeout=int(max(entries.values()) - now) + 1)
    else:
        cache.delete(_key(user_id))


def online_user_ids(user_ids: list[int]) -> set[int]:
    now = time.time()
    found = cache.get_many([_key(u) for u in user_ids])
    return {u for u in user_ids if any(exp > now for exp in (found.get(_key(u)) or {}).values())}


def inbox_has_agent_online(inbox) -> bool:
    """Is any agent who may answer this inbox's chats online?"""
    from ecrm.core.models import User

    from ...selectors import team_agents

    if inbox.team_id:
        candidates = [u.pk for u in team_agents(inbox.team_id)]
    else:  # an inbox with no team is answered by anyone who may reply
        candidates = list(
            User.objects.filter(is_active=True, role__in=["agent", "manager", "admin"]).values_list(
                "pk", flat=True
            )
        )
    return bool(candidates) and bool(online_user_ids(candidates))
