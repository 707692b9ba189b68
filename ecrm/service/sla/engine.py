"""The ticket SLA clock: which policy applies, due and warning times in business minutes on the
team's calendar, pauses while the ticket waits on the customer (or is solved), and attainment.

Rules (documented in docs/service.md):
* the policy is the most specific active one for the ticket's priority and the customer's tier
  (priority+tier, then priority, then tier, then a catch-all); targets count from `created_at`;
* the resolution clock stops while the ticket is pending or solved/closed and resumes when it is
  worked again; stopped business minutes push the resolution due time back;
* the first-response clock is not paused: it stops for good at the first public agent reply.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings

from ..models import BusinessCalendar, CalendarDayKind, CustomerTier, SlaPolicy, Ticket, TicketStatus
from .calendar import STANDARD_WEEK, Calendar, add_business_minutes, business_minutes_between

PAUSED_STATUSES = (TicketStatus.PENDING, TicketStatus.SOLVED, TicketStatus.CLOSED)


def to_calendar(model: BusinessCalendar) -> Calendar:
    days = list(model.days.all())
    return Calendar.from_config(
        model.timezone,
        model.weekly_hours or STANDARD_WEEK,
        holidays=[d.date for d in days if d.kind == CalendarDayKind.HOLIDAY],
        workdays={d.date: d.hours for d in days if d.kind == CalendarDayKind.WORKDAY},
    )


def calendar_for_team(team_id: int | None) -> Calendar:
    """The team's calendar, else the default calendar, else Mon–Fri 09–18 in the site's zone."""
    model = None
    if team_id:
        model = BusinessCalendar.objects.filter(teams__id=team_id).prefetch_related("days").first()
    if model is None:
        model = BusinessCalendar.objects.filter(is_default=True).prefetch_related("days").first()
    if model is None:
        return Calendar.from_config(settings.TIME_ZONE, STANDARD_WEEK)
    return to_calendar(model)


def customer_tier(customer: Any) -> str:
    """VIP if the customer has the tag "vip" or is in the top CLV band of the current analytics run."""
    from ecrm.analytics.models import ClvBand, CustomerScore

    if customer.tags.filter(name__iexact="vip").exists():
        return CustomerTier.VIP
    top = CustomerScore.objects.filter(
        customer=customer, run__is_current=True, run__kind="customer_models", clv_band=ClvBand.TOP
    ).exists()
    return CustomerTier.VIP if top else CustomerTier.STANDARD


def policy_for(priority: str, tier: str) -> SlaPolicy | None:
    candidates = [
        p
        for p in SlaPolicy.objects.filter(is_active=True)
        if p.priority in ("", priority) and p.tier in ("", tier)
    ]
    # most specific first: priority and tier both set, then priority only, then tier only, then catch-all
    candidates.sort(key=lambda p: (not p.priority, not p.tier, p.pk))
    return candidates[0] if candidates else None


def apply_policy(ticket: Ticket, *, tier: str | None = None, cal: Calendar | None = None) -> None:
    """(Re)compute the policy and the due/warning times from `created_at` (not saved)."""
    policy = policy_for(ticket.priority, tier or customer_tier(ticket.customer))
    ticket.sla_policy = policy
    if policy is None:
        ticket.first_response_due = ticket.first_response_warn_at = None
        ticket.resolution_due = ticket.resolution_warn_at = None
        return
    cal = cal or calendar_for_team(ticket.team_id)
    start, share = ticket.created_at, policy.warn_percent / 100
    ticket.first_response_due = add_business_minutes(start, policy.first_response_minutes, cal)
    ticket.first_response_warn_at = add_business_minutes(start, policy.first_response_minutes * share, cal)
    _resolution_times(ticket, policy, cal)


def _resolution_times(ticket: Ticket, policy: SlaPolicy, cal: Calendar) -> None:
    start, share = ticket.created_at, policy.warn_percent / 100
    ticket.resolution_due = add_business_minutes(
        start, policy.resolution_minutes + ticket.paused_minutes, cal
    )
    ticket.resolution_warn_at = add_business_minutes(
        start, policy.resolution_minutes * share + ticket.paused_minutes, cal
    )


def on_status_change(ticket: Ticket, old_status: str, now: dt.datetime) -> list[str]:
    """Pause or resume the resolution clock for a status change; returns the fields changed."""
    was_paused, paused = old_status in PAUSED_STATUSES, ticket.status in PAUSED_STATUSES
    if paused and not was_paused:
        ticket.paused_at = now
        return ["paused_at"]
    if was_paused and not paused and ticket.paused_at is not None:
        cal = calendar_for_team(ticket.team_id)
        ticket.paused_minutes += max(0.0, business_minutes_between(ticket.paused_at, now, cal))
        ticket.paused_at = None
        if ticket.sla_policy_id:
            _resolution_times(ticket, ticket.sla_policy, cal)
        return ["paused_at", "paused_minutes", "resolution_due", "resolution_warn_at"]
    return []


def first_response_minutes(ticket: Ticket, cal: Calendar) -> float | None:
    if ticket.first_response_at is None:
        return None
    return business_minutes_between(ticket.created_at, ticket.first_response_at, cal)


def resolution_minutes(ticket: Ticket, cal: Calendar) -> float | None:
    if ticket.solved_at is None:
        return None
    # time after the solve until a reopen was added to paused_minutes; the solve itself ends the clock
    return max(
        0.0, business_minutes_between(ticket.created_at, ticket.solved_at, cal) - ticket.paused_minutes
    )


def first_response_met(ticket: Ticket) -> bool | None:
    if ticket.first_response_due is None or ticket.first_response_at is None:
        return None
    return ticket.first_response_at <= ticket.first_response_due


def resolution_met(ticket: Ticket) -> bool | None:
    if ticket.resolution_due is None or ticket.solved_at is None:
        return None
    return ticket.solved_at <= ticket.resolution_due
