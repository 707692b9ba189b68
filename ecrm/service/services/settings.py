"""Writes on SLA settings: policies, business calendars (weekly hours, holidays, make-up days) and
custom ticket fields. Managers and admins only (service.configure)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import IntegrityError, transaction

from ecrm.core.audit import record_audit, snapshot
from ecrm.core.exceptions import ValidationFailed
from ecrm.core.models import Team, User
from ecrm.core.permissions import check_perm

from ..models import BusinessCalendar, CalendarDay, CalendarDayKind, CustomerTier, Priority, SlaPolicy
from ..sla.calendar import STANDARD_WEEK, CalendarError, parse_hours


def _positive_int(value: Any, field: str, errors: dict) -> int:
    try:
        number = int(str(value).strip())
        if number <= 0:
            raise ValueError
        return number
    except (TypeError, ValueError):
        errors[field] = "A whole number of minutes above zero."
        return 0


def do_save_policy(
    *, actor: User, name: str, priority: str = "", tier: str = "", first_response_minutes: Any,
    resolution_minutes: Any, warn_percent: Any = 80, policy: SlaPolicy | None = None,
) -> SlaPolicy:  # fmt: skip
    check_perm(actor, "service.configure")
    errors: dict[str, str] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = "This field is required."
    if priority and priority not in Priority.values:
        errors["priority"] = f"Must be one of {', '.join(Priority.values)} or empty."
    if tier and tier not in CustomerTier.values:
        errors["tier"] = f"Must be one of {', '.join(CustomerTier.values)} or empty."
    first = _positive_int(first_response_minutes, "first_response_minutes", errors)
    resolution = _positive_int(resolution_minutes, "resolution_minutes", errors)
    warn = _positive_int(warn_percent or 80, "warn_percent", errors)
    if warn >= 100:
        errors["warn_percent"] = "Below 100."
    if first and resolution and resolution < first:
        errors["resolution_minutes"] = "Resolution cannot come before the first response."
    if errors:
        raise ValidationFailed("The policy is not valid.", fields=errors)
    with transaction.atomic():
        before = snapshot(policy) if policy else None
        policy = policy or SlaPolicy()
        policy.name, policy.priority, policy.tier = name[:100], priority, tier
        policy.first_response_minutes, policy.resolution_minutes, policy.warn_percent = (
            first,
            resolution,
            warn,
        )
        policy.save()
        record_audit(actor=actor, action="sla.policy.save", obj=policy, before=before, after=snapshot(policy))
    return policy


def parse_weekly(text_or_dict: Any) -> dict[str, list[list[str]]]:
    """Weekly hours from JSON ({"0": [["09:00","18:00"]], ...}) or lines "mon 09:00-12:00 13:00-18:00"."""
    if isinstance(text_or_dict, dict):
        data = text_or_dict
    else:
        text = (text_or_dict or "").strip()
        if not text:
            return dict(STANDARD_WEEK)
        if text.startswith("{"):
            try:
                data = json.loads(text)
            except ValueError:
                raise ValidationFailed(
                    "Weekly hours are not valid JSON.", fields={"weekly_hours": "bad JSON"}
                ) from None
        else:
            days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
            data = {str(d): [] for d in range(7)}
            for line in text.splitlines():
                parts = line.split()
                if not parts:
                    continue
                day = parts[0][:3].lower()
                if day not in days:
                    raise ValidationFailed(
                        f"Unknown weekday {parts[0]!r}.", fields={"weekly_hours": parts[0]}
                    )
                windows = []
                for span in parts[1:]:
                    if "-" not in span:
                        raise ValidationFailed(f"Write hours like 09:00-18:00, not {span!r}.",
                                               fields={"weekly_hours": span})  # fmt: skip
                    windows.append(span.split("-", 1))
                data[str(days.index(day))] = windows
    clean = {}
    for key, windows in data.items():
        if str(key) not in {str(d) for d in range(7)}:
            raise ValidationFailed(
                f"Weekday {key!r} must be 0 (Monday) to 6.", fields={"weekly_hours": str(key)}
            )
        try:
            parse_hours(windows)
        except (CalendarError, ValueError, TypeError) as exc:
            raise ValidationFailed(str(exc), fields={"weekly_hours": str(exc)}) from None
        clean[str(key)] = [list(w) for w in windows]
    return clean


def do_save_calendar(
    *, actor: User, name: str, timezone: str, weekly_hours: Any, teams: list[Team] | None = None,
    is_default: bool = False, calendar: BusinessCalendar | None = None,
) -> BusinessCalendar:  # fmt: skip
    check_perm(actor, "service.configure")
    errors = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = "This field is required."
    try:
        ZoneInfo((timezone or "").strip())
    except (ZoneInfoNotFoundError, ValueError):
        errors["timezone"] = "Not a known time zone (like Asia/Shanghai or Europe/London)."
    if errors:
        raise ValidationFailed("The calendar is not valid.", fields=errors)
    weekly = parse_weekly(weekly_hours)
    with transaction.atomic():
        before = snapshot(calendar) if calendar else None
        calendar = calendar or BusinessCalendar()
        calendar.name, calendar.timezone, calendar.weekly_hours = name[:100], timezone.strip(), weekly
        calendar.is_default = is_default
        calendar.save()
        if is_default:
            BusinessCalendar.objects.exclude(pk=calendar.pk).update(is_default=False)
        if teams is not None:
            # a team has one calendar: taking a team here releases it from any other calendar
            for other in BusinessCalendar.objects.exclude(pk=calendar.pk).filter(teams__in=teams).distinct():
                other.teams.remove(*teams)
            calendar.teams.set(teams)
        record_audit(actor=actor, action="sla.calendar.save", obj=calendar, before=before,
                     after={**snapshot(calendar), "teams": [t.pk for t in teams or []]})  # fmt: skip
    return calendar


def do_add_calendar_day(
    *, actor: User, calendar: BusinessCalendar, date: Any, kind: str, name: str = "", hours: Any = None
) -> CalendarDay:
    check_perm(actor, "service.configure")
    errors = {}
    try:
        day = date if isinstance(date, dt.date) else dt.date.fromisoformat(str(date).strip())
    except ValueError:
        errors["date"] = "A date like 2026-10-01."
        day = None
    if kind not in CalendarDayKind.values:
        errors["kind"] = f"Must be one of {', '.join(CalendarDayKind.values)}."
    windows: list = []
    if kind == CalendarDayKind.WORKDAY and hours:
        spans = hours.split() if isinstance(hours, str) else hours
        windows = [s.split("-", 1) if isinstance(s, str) else list(s) for s in spans]
        try:
            parse_hours(windows)
        except (CalendarError, ValueError) as exc:
            errors["hours"] = str(exc)
    if errors:
        raise ValidationFailed("The day is not valid.", fields=errors)
    try:
        with transaction.atomic():
            entry = CalendarDay.objects.create(calendar=calendar, date=day, kind=kind, name=(name or "")[:100],
                                               hours=windows)  # fmt: skip
            record_audit(actor=actor, action="sla.calendar.day", obj=entry, after=snapshot(entry))
    except IntegrityError:
        raise ValidationFailed(
            "That date is already on the calendar.", fields={"date": "already set"}
        ) from None
    return entry


def do_set_policy_active(*, actor: User, policy: SlaPolicy, active: bool) -> SlaPolicy:
    """Switch a policy off (new and re-prioritised tickets stop matching it) or back on. Running
    tickets keep the due times they have."""
    check_perm(actor, "service.configure")
    with transaction.atomic():
        before = snapshot(policy, ["is_active"])
        policy.is_active = active
        policy.save(update_fields=["is_active"])
        record_audit(
            actor=actor, action="sla.policy.active", obj=policy, before=before, after={"is_active": active}
        )
    return policy


def do_remove_calendar_day(*, actor: User, day: CalendarDay) -> None:
    check_perm(actor, "service.configure")
    with transaction.atomic():
        before = snapshot(day)
        day.delete()
        record_audit(actor=actor, action="sla.calendar.day_remove", object_type="service.calendarday",
                     object_id=before["id"], before=before)  # fmt: skip


def _pk(data: Any, key: str) -> int:
    value = str(data.get(key) or "")
    return int(value) if value.isdigit() else 0


def handle_form(*, actor: User, data: Any) -> None:
    """The settings page posts one of several small forms, told apart by `form`."""
    from .tickets import do_define_ticket_field

    form = data.get("form")
    if form == "policy":
        do_save_policy(
            actor=actor, name=data.get("name", ""), priority=data.get("priority", ""), tier=data.get("tier", ""),
            first_response_minutes=data.get("first_response_minutes"),
            resolution_minutes=data.get("resolution_minutes"), warn_percent=data.get("warn_percent") or 80,
        )  # fmt: skip
    elif form == "calendar":
        teams = list(Team.objects.filter(pk__in=[int(t) for t in data.getlist("teams") if t.isdigit()]))
        do_save_calendar(
            actor=actor, name=data.get("name", ""), timezone=data.get("timezone", ""),
            weekly_hours=data.get("weekly_hours", ""), teams=teams, is_default=bool(data.get("is_default")),
        )  # fmt: skip
    elif form == "day":
        calendar = BusinessCalendar.objects.filter(pk=int(data.get("calendar") or 0)).first() if str(
            data.get("calendar") or "").isdigit() else None  # fmt: skip
        if calendar is None:
            raise ValidationFailed("Choose a calendar.", fields={"calendar": "required"})
        do_add_calendar_day(actor=actor, calendar=calendar, date=data.get("date", ""), kind=data.get("kind", ""),
                            name=data.get("name", ""), hours=data.get("hours", ""))  # fmt: skip
    elif form == "field":
        do_define_ticket_field(actor=actor, key=data.get("key", ""), label=data.get("label", ""),
                               type=data.get("type", ""), choices=data.get("choices", "").split(","))  # fmt: skip
    elif form == "policy_active":
        policy = SlaPolicy.objects.filter(pk=_pk(data, "policy")).first()
        if policy is None:
            raise ValidationFailed("No such policy.", fields={"policy": "unknown"})
        do_set_policy_active(actor=actor, policy=policy, active=data.get("active") == "1")
    elif form == "day_remove":
        day = CalendarDay.objects.filter(pk=_pk(data, "day")).first()
        if day is None:
            raise ValidationFailed("No such day.", fields={"day": "unknown"})
        do_remove_calendar_day(actor=actor, day=day)
    else:
        raise ValidationFailed("Unknown form.", fields={"form": "unknown"})
