"""Writes of routing, one module per use case: agent profiles and presence, queues and settings,
work items (enqueue/complete), the batch solve and failover. Import from here."""

from .items import complete, enqueue, enqueue_for_object, refresh_item, sync_manual_assignment
from .profiles import (
    do_set_presence,
    do_update_profile,
    ensure_profile,
    parse_skills,
    touch_activity,
)
from .settings import do_delete_queue, do_save_queue, do_update_settings, get_settings
from .solve import (
    RouteResult,
    check_idle_agents,
    check_no_response,
    mark_responded,
    reconcile_done,
    release_agent,
    route_once,
    tick,
)

__all__ = [
    "RouteResult",
    "check_idle_agents",
    "check_no_response",
    "complete",
    "do_delete_queue",
    "do_save_queue",
    "do_set_presence",
    "do_update_profile",
    "do_update_settings",
    "enqueue",
    "enqueue_for_object",
    "ensure_profile",
    "get_settings",
    "mark_responded",
    "parse_skills",
    "reconcile_done",
    "refresh_item",
    "release_agent",
    "route_once",
    "sync_manual_assignment",
    "tick",
    "touch_activity",
]
