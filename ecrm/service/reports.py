"""SLA attainment and satisfaction reports: by team, agent or priority over a period — % of
targets met, mean and median business minutes to first response and to resolution, CSAT."""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.db.models import Avg, Count, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ecrm.core.permissions import check_perm

from .models import Priority, SurveyKind, SurveyResponse, Ticket
from .selectors import ticket_visibility_q
from .sla import engine

GROUPS = [("team", _("Team")), ("agent", _("Agent")), ("priority", _("Priority"))]
CSV_HEADER = [
    "group", "tickets", "first_response_measured", "first_response_met_pct", "first_response_mean_min",
    "first_response_median_min", "resolved", "resolution_met_pct", "resolution_mean_min", "resolution_median_min",
    "csat_answers", "csat_avg",
]  # fmt: skip


@dataclass
class ReportParams:
    group: str = "team"
    date_from: dt.date | None = None
    date_to: dt.date | None = None

    @classmethod
    def from_params(cls, params: Any) -> ReportParams:
        def _date(value: Any) -> dt.date | None:
            try:
                return dt.date.fromisoformat(str(value)) if value else None
            except ValueError:
                return None

        group = params.get("group") or "team"
        today = timezone.localdate()
        return cls(
            group=group if group in dict(GROUPS) else "team",
            date_from=_date(params.get("from")) or today - dt.timedelta(days=30),
            date_to=_date(params.get("to")) or today,
        )

    def range(self) -> tuple[dt.datetime, dt.datetime]:
        tz = timezone.get_current_timezone()
        start = dt.datetime.combine(self.date_from, dt.time.min, tzinfo=tz)
        end = dt.datetime.combine(self.date_to + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
        return start, end


@dataclass
class ReportRow:
    key: Any
    label: str
    tickets: int = 0
    fr_times: list[float] | None = None
    fr_met: int = 0
    fr_measured: int = 0
    res_times: list[float] | None = None
    res_met: int = 0
    res_measured: int = 0
    csat_answers: int = 0
    csat_avg: float | None = None

    @staticmethod
    def _pct(part: int, whole: int) -> float | None:
        return round(100 * part / whole, 1) if whole else None

    @property
    def fr_met_pct(self):
        return self._pct(self.fr_met, self.fr_measured)

    @property
    def res_met_pct(self):
        return self._pct(self.res_met, self.res_measured)

    @property
    def fr_mean(self):
        return round(statistics.fmean(self.fr_times), 1) if self.fr_times else None

    @property
    def fr_median(self):
        return round(statistics.median(self.fr_times), 1) if self.fr_times else None

    @property
    def res_mean(self):
        return round(statistics.fmean(self.res_times), 1) if self.res_times else None

    @property
    def res_median(self):
        return round(statistics.median(self.res_times), 1) if self.res_times else None


def _group_key(ticket: Ticket, group: str) -> tuple[Any, str]:
    if group == "agent":
        return ticket.assignee_id, ticket.assignee.username if ticket.assignee else str(_("(unassigned)"))
    if group == "priority":
        return ticket.priority, ticket.get_priority_display()
    return ticket.team_id, ticket.team.name if ticket.team else str(_("(no team)"))


def attainment(user: Any, params: ReportParams) -> list[ReportRow]:
    """Tickets created in the period, grouped; business minutes on each ticket's team calendar."""
    check_perm(user, "service.reports")
    start, end = params.range()
    tickets = (
        Ticket.objects.filter(ticket_visibility_q(user), created_at__gte=start, created_at__lt=end,
                              merged_into__isnull=True)
        .select_related("team", "assignee")
        .only("id", "priority", "created_at", "first_response_at", "first_response_due", "solved_at",
              "resolution_due", "paused_minutes", "team__name", "assignee__username", "team_id", "assignee_id")
    )  # fmt: skip
    rows: dict[Any, ReportRow] = {}
    calendars: dict[int | None, Any] = {}
    for t in tickets.iterator(chunk_size=2000):
        key, label = _group_key(t, params.group)
        row = rows.setdefault(key, ReportRow(key=key, label=label, fr_times=[], res_times=[]))
        row.tickets += 1
        if t.team_id not in calendars:
            calendars[t.team_id] = engine.calendar_for_team(t.team_id)
        cal = calendars[t.team_id]
        fr = engine.first_response_minutes(t, cal)
        if fr is not None:
            row.fr_times.append(fr)
        met = engine.first_response_met(t)
        if met is not None:
            row.fr_measured += 1
            row.fr_met += met
        res = engine.resolution_minutes(t, cal)
        if res is not None:
            row.res_times.append(res)
        met = engine.resolution_met(t)
        if met is not None:
            row.res_measured += 1
            row.res_met += met
    field = {"agent": "agent_id", "priority": "ticket__priority", "team": "team_id"}[params.group]
    csat = (
        SurveyResponse.objects.filter(kind=SurveyKind.CSAT, score__isnull=False, ticket__created_at__gte=start,
                                      ticket__created_at__lt=end)
        .values(field).annotate(n=Count("id"), avg=Avg("score"))
    )  # fmt: skip
    for item in csat:
        row = rows.get(item[field])
        if row is not None:
            row.csat_answers, row.csat_avg = item["n"], round(item["avg"], 2)
    order = {p: i for i, p in enumerate(Priority.values)}
    return sorted(rows.values(), key=lambda r: (order.get(r.key, 0), r.label) if params.group == "priority"
                  else (r.label.lower(),))  # fmt: skip


def csv_rows(rows: list[ReportRow]):
    for r in rows:
        yield [r.label, r.tickets, r.fr_measured, r.fr_met_pct, r.fr_mean, r.fr_median, r.res_measured,
               r.res_met_pct, r.res_mean, r.res_median, r.csat_answers, r.csat_avg]  # fmt: skip


def nps_summary(campaign_ids: list[int]) -> dict[int, dict[str, Any]]:
    """NPS per campaign: % promoters (9–10) minus % detractors (0–6) of the answers."""
    data = (
        SurveyResponse.objects.filter(campaign_id__in=campaign_ids, score__isnull=False)
        .values("campaign_id")
        .annotate(
            n=Count("id"),
            promoters=Count("id", filter=Q(score__gte=9)),
            detractors=Count("id", filter=Q(score__lte=6)),
        )
    )
    out: dict[int, dict[str, Any]] = defaultdict(dict)
    for d in data:
        out[d["campaign_id"]] = {
            "answers": d["n"],
            "nps": round(100 * (d["promoters"] - d["detractors"]) / d["n"]) if d["n"] else None,
        }
    return out
