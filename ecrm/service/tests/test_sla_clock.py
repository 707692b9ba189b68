"""The ticket SLA clock on the database: policy choice by priority and tier, due times on the team's
calendar, pauses while waiting on the customer, first response by reply hook or public comment,
and the periodic check (warn once, breach once with escalation)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from ecrm.conversations.services import Inbound, do_send_reply, receive_inbound
from ecrm.customers.models import CustomerTag, Tag
from ecrm.service.models import BusinessCalendar, CalendarDay, SlaPolicy, Ticket, TicketActivity
from ecrm.service.services import do_add_comment, do_create_ticket, do_set_ticket_status
from ecrm.service.services.sla import check_sla

from . import factories as f

SH = ZoneInfo("Asia/Shanghai")


def sh(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=SH)


class Clock:
    def __init__(self, monkeypatch, start: dt.datetime):
        self.now = start
        monkeypatch.setattr("django.utils.timezone.now", lambda: self.now)

    def set(self, *args) -> None:
        self.now = sh(*args)


@pytest.fixture
def sla(cast):
    cal = BusinessCalendar.objects.create(
        name="China", timezone="Asia/Shanghai", is_default=True,
        weekly_hours={str(d): [["09:00", "18:00"]] for d in range(5)},
    )  # fmt: skip
    cal.teams.add(f.team("Service CN"))
    CalendarDay.objects.create(calendar=cal, date=dt.date(2026, 10, 1), kind="holiday", name="National Day")
    return {
        "normal": SlaPolicy.objects.create(name="Normal", priority="normal", first_response_minutes=60,
                                           resolution_minutes=480),
        "vip": SlaPolicy.objects.create(name="VIP", tier="vip", first_response_minutes=30, resolution_minutes=240),
        "any": SlaPolicy.objects.create(name="Default", first_response_minutes=240, resolution_minutes=2400),
    }  # fmt: skip


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch, sh(2026, 9, 14, 17, 30))  # a Monday, half an hour before closing


def new_ticket(customer, **kw):
    return do_create_ticket(
        actor=None, customer=customer, subject="Late parcel", team=f.team("Service CN"), **kw
    )


def test_due_times_are_in_business_minutes_on_the_team_calendar(sla, clock):
    ticket = new_ticket(f.customer())
    assert ticket.sla_policy == sla["normal"]
    assert ticket.first_response_due == sh(2026, 9, 15, 9, 30)
    assert ticket.first_response_warn_at == sh(2026, 9, 15, 9, 18)  # 80% of 60 min
    assert ticket.resolution_due == sh(2026, 9, 15, 16, 30)


def test_policy_by_tier_vip_tag_beats_the_catch_all_and_priority_specific_wins(sla, clock):
    vip = f.customer("Big Spender", "big@example.com")
    CustomerTag.objects.create(customer=vip, tag=Tag.objects.create(name="vip"))
    assert new_ticket(vip, priority="low").sla_policy == sla["vip"]
    assert new_ticket(f.customer("Ann", "ann@example.com"), priority="low").sla_policy == sla["any"]
    assert new_ticket(f.customer("Bo", "bo@example.com"), priority="normal").sla_policy == sla["normal"]


def test_mail_naming_the_ticket_threads_into_its_conversation_and_resumes_the_clock(
    sla, clock, cast, django_capture_on_commit_callbacks
):
    customer = f.customer()
    conv = f.conversation(customer, "Service CN")
    ticket = new_ticket(customer, conversation=conv)
    clock.set(2026, 9, 15, 10, 0)
    do_set_ticket_status(ticket=ticket, actor=cast["agent_li"], status="pending")
    clock.set(2026, 9, 16, 10, 0)  # a business day later (Tue 10:00 -> Wed 10:00 = 9 h)
    with django_capture_on_commit_callbacks(execute=True):
        result = receive_inbound(
            Inbound(inbox=conv.inbox, identities=[("email", customer.email)], body_text="Here you go",
                    external_id="<r1@x>", subject=f"Re: [{ticket.reference}] Late parcel")
        )  # fmt: skip
    assert result.conversation == conv  # the subject's ticket reference found the thread
    ticket.refresh_from_db()
    assert ticket.status == "open" and ticket.paused_at is None
    assert ticket.paused_minutes == 9 * 60
    # 480 target + 540 paused, from Mon 17:30 -> Wed 16:30
    assert ticket.resolution_due == sh(2026, 9, 16, 16, 30)


def test_a_guessed_ticket_number_from_another_sender_does_not_join_the_thread(sla, clock):
    customer = f.customer()
    conv = f.conversation(customer, "Service CN")
    ticket = new_ticket(customer, conversation=conv)
    result = receive_inbound(
        Inbound(inbox=conv.inbox, identities=[("email", "mallory@example.com")], body_text="let me in",
                external_id="<m1@x>", subject=f"[{ticket.reference}]")
    )  # fmt: skip
    assert result.conversation != conv and result.conversation.customer != customer


def test_customer_reply_in_the_linked_conversation_resumes_the_ticket(
    sla, clock, cast, django_capture_on_commit_callbacks
):
    from ecrm.service.hooks import on_inbound

    customer = f.customer()
    conv = f.conversation(customer, "Service CN")
    ticket = new_ticket(customer, conversation=conv)
    clock.set(2026, 9, 15, 10, 0)
    do_set_ticket_status(ticket=ticket, actor=cast["agent_li"], status="pending")
    clock.set(2026, 9, 16, 10, 0)
    on_inbound(conv.pk, 0, False)
    ticket.refresh_from_db()
    assert ticket.status == "open" and ticket.paused_at is None
    assert ticket.paused_minutes == 9 * 60
    assert ticket.resolution_due == sh(2026, 9, 16, 16, 30)
    assert TicketActivity.objects.filter(ticket=ticket, kind="customer_reply").count() == 1


def test_first_response_by_an_agent_reply_in_the_conversation(
    sla, clock, cast, django_capture_on_commit_callbacks
):
    customer = f.customer()
    conv = f.conversation(customer, "Service CN")
    ticket = new_ticket(customer, conversation=conv)
    clock.set(2026, 9, 15, 9, 10)
    with django_capture_on_commit_callbacks(execute=True):
        do_send_reply(conversation=conv, actor=cast["agent_li"], body_text="On it")
    ticket.refresh_from_db()
    assert ticket.first_response_at == sh(2026, 9, 15, 9, 10) and ticket.status == "open"
    assert TicketActivity.objects.get(ticket=ticket, key="first_response").data == {"met": True}
    clock.set(2026, 9, 15, 9, 40)
    assert check_sla()["first_response.breach"] == 0  # answered in time: no breach later


def test_first_response_by_a_public_comment_not_by_a_note(sla, clock, cast):
    ticket = new_ticket(f.customer(email=None))
    clock.set(2026, 9, 15, 9, 0)
    do_add_comment(ticket=ticket, actor=cast["agent_li"], body="note", public=False)
    ticket.refresh_from_db()
    assert ticket.first_response_at is None
    clock.set(2026, 9, 15, 9, 45)
    do_add_comment(ticket=ticket, actor=cast["agent_li"], body="Hello!", public=True)
    ticket.refresh_from_db()
    assert ticket.first_response_at == sh(2026, 9, 15, 9, 45)
    assert ticket.assignee == cast["agent_li"]


def test_warning_then_breach_fire_once_each_and_escalate(
    sla, clock, cast, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(
        "ecrm.service.services.sla.publish", lambda group, payload: sent.append((group, payload))
    )
    ticket = new_ticket(f.customer(), assignee=cast["agent_li"])
    clock.set(2026, 9, 15, 9, 17)
    assert sum(check_sla().values()) == 0
    clock.set(2026, 9, 15, 9, 18)
    with django_capture_on_commit_callbacks(execute=True):
        assert check_sla()["first_response.warning"] == 1
        assert check_sla()["first_response.warning"] == 0  # idempotent
    assert sorted(g for g, _ in sent) == sorted([f"user.{cast['agent_li'].pk}", f"user.{cast['manager'].pk}"])
    sent.clear()
    clock.set(2026, 9, 15, 9, 31)
    with django_capture_on_commit_callbacks(execute=True):
        first = check_sla()
        second = check_sla()
    assert first["first_response.breach"] == 1 and sum(second.values()) == 0
    ticket.refresh_from_db()
    assert ticket.priority == "high" and ticket.first_response_breached
    assert {p["type"] for _, p in sent} == {"ticket.sla.first_response.breach"}
    assert TicketActivity.objects.filter(ticket=ticket, kind__startswith="sla.").count() == 2
    # the resolution target: warned and breached once, even when found late
    clock.set(2026, 9, 16, 12, 0)
    result = check_sla()
    assert (result["resolution.warning"], result["resolution.breach"]) == (1, 1)
    assert sum(check_sla().values()) == 0
    ticket.refresh_from_db()
    assert ticket.priority == "urgent"


def test_a_paused_or_solved_ticket_does_not_breach_resolution(sla, clock, cast):
    ticket = new_ticket(f.customer(), assignee=cast["agent_li"])
    do_set_ticket_status(ticket=ticket, actor=cast["agent_li"], status="pending")
    clock.set(2026, 9, 30, 12, 0)
    assert check_sla()["resolution.breach"] == 0
    assert Ticket.objects.get().resolution_breached is False


def test_a_top_clv_band_customer_is_vip_from_the_current_analytics_run(sla, clock):
    from django.utils import timezone

    from ecrm.analytics.models import CustomerScore, ModelRun
    from ecrm.service.sla.engine import customer_tier

    top, low = f.customer("Top", "top@example.com"), f.customer("Low", "low@example.com")
    run = ModelRun.objects.create(is_current=True, status="succeeded")
    old = ModelRun.objects.create(is_current=False, status="succeeded")
    common = {"r_score": 5, "f_score": 5, "m_score": 5, "rfm_segment": "champions", "frequency": 3, "recency": 10,
              "tenure": 100, "monetary_value": 50, "computed_at": timezone.now()}  # fmt: skip
    CustomerScore.objects.create(run=run, customer=top, clv_band="top", **common)
    CustomerScore.objects.create(run=run, customer=low, clv_band="low", **common)
    CustomerScore.objects.create(run=old, customer=low, clv_band="top", **common)  # an old run does not count
    assert (customer_tier(top), customer_tier(low)) == ("vip", "standard")
    assert new_ticket(top, priority="low").sla_policy == sla["vip"]


def test_an_auto_reply_in_the_linked_conversation_does_not_resume_the_clock(sla, clock, cast):
    from ecrm.conversations.models import Message
    from ecrm.service.hooks import on_inbound

    customer = f.customer()
    conv = f.conversation(customer, "Service CN")
    ticket = new_ticket(customer, conversation=conv)
    do_set_ticket_status(ticket=ticket, actor=cast["agent_li"], status="pending")
    auto = Message.objects.create(conversation=conv, inbox=conv.inbox, direction="in", body_text="Out of office",
                                  metadata={"auto": "autoreply"}, created_at=clock.now)  # fmt: skip
    on_inbound(conv.pk, auto.pk, False)
    ticket.refresh_from_db()
    assert ticket.status == "pending" and ticket.paused_at is not None
