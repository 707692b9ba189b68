"""Console pages: new ticket, ticket from a conversation, update, comment, SLA settings, the
attainment report with CSV, returns, the customer timeline and the conversation panel."""

from __future__ import annotations

import datetime as dt

from django.urls import reverse
from django.utils import timezone

from ecrm.customers.timeline import build_timeline
from ecrm.service.models import BusinessCalendar, CalendarDay, SlaPolicy, Ticket, TicketComment
from ecrm.service.services import do_add_comment, do_create_ticket, do_set_ticket_status

from . import factories as f


def test_new_ticket_page_creates_and_shows_errors_readably(login, cast):
    customer = f.customer()
    f.order(customer, "SO-42")
    client = login("agent_li")
    assert client.get(reverse("service:new")).status_code == 200
    bad = client.post(reverse("service:new"), {"customer": customer.pk, "subject": "", "order": "SO-999"})
    assert bad.status_code == 422 and "This customer has no order with that number." in bad.content.decode()
    ok = client.post(reverse("service:new"), {"customer": customer.pk, "subject": "Cracked mug", "type": "complaint",
                                              "priority": "high", "order": "SO-42", "team": f.team("Service CN").pk})  # fmt: skip
    ticket = Ticket.objects.get()
    assert ok.status_code == 302 and (ticket.order.external_id, ticket.type, ticket.team.name) == (
        "SO-42", "complaint", "Service CN")  # fmt: skip
    page = client.get(reverse("service:detail", args=[ticket.pk])).content.decode()
    assert ticket.reference in page and "Cracked mug" in page


def test_conversation_panel_and_ticket_from_conversation(login, cast):
    from ecrm.conversations.panels import conversation_panels

    customer = f.customer()
    conv = f.conversation(customer, "Service CN", subject="Broken lid")
    panel = next(
        p for p in conversation_panels(conv, cast["agent_li"]) if p["template"].startswith("service/")
    )
    assert panel["context"]["linked"] == [] and panel["context"]["can_edit"] is True
    r = login("agent_li").post(
        reverse("service:from_conversation", args=[conv.pk]), {"subject": "", "type": "complaint"}
    )
    ticket = Ticket.objects.get()
    assert r.status_code == 302 and (ticket.subject, ticket.source) == ("Broken lid", "conversation")
    assert list(ticket.conversations.all()) == [conv]
    # another team's agent cannot open a ticket on it
    r = login("agent_bob").post(reverse("service:from_conversation", args=[conv.pk]), {"subject": "x"})
    assert r.status_code == 404 and Ticket.objects.count() == 1


def test_update_and_comment_forms(login, cast):
    customer = f.customer(email=None)
    ticket = do_create_ticket(actor=None, customer=customer, subject="x", team=f.team("Service CN"))
    client = login("agent_li")
    client.post(reverse("service:update", args=[ticket.pk]),
                {"status": "on_hold", "priority": "urgent", "assignee": cast["agent_li"].pk, "tags": "a, B"})  # fmt: skip
    ticket.refresh_from_db()
    assert (ticket.status, ticket.priority, ticket.assignee) == ("on_hold", "urgent", cast["agent_li"])
    assert sorted(ticket.tags.values_list("name", flat=True)) == ["a", "b"]
    # assigning someone from another team is refused with a message, nothing changes
    r = client.post(
        reverse("service:update", args=[ticket.pk]), {"assignee": cast["agent_bob"].pk}, follow=True
    )
    assert "cannot work on tickets of that team" in r.content.decode()
    assert Ticket.objects.get(pk=ticket.pk).assignee == cast["agent_li"]
    client.post(
        reverse("service:comment", args=[ticket.pk]), {"body": "<b>note</b>", "visibility": "internal"}
    )
    comment = TicketComment.objects.get()
    assert (comment.is_public, comment.body) == (False, "<b>note</b>")
    page = client.get(reverse("service:detail", args=[ticket.pk])).content.decode()
    assert "&lt;b&gt;note&lt;/b&gt;" in page and "<b>note</b>" not in page


def test_sla_settings_page_for_managers_only(login, cast):
    client = login("manager")
    r = client.post(reverse("service:sla"), {"form": "policy", "name": "Urgent", "priority": "urgent",
                                             "first_response_minutes": "15", "resolution_minutes": "120"})  # fmt: skip
    assert r.status_code == 302 and SlaPolicy.objects.get().first_response_minutes == 15
    r = client.post(reverse("service:sla"), {"form": "calendar", "name": "CN", "timezone": "Asia/Shanghai",
                                             "weekly_hours": "mon 09:00-12:00 13:00-18:00\nsat 10:00-16:00",
                                             "teams": [f.team("Service CN").pk], "is_default": "1"})  # fmt: skip
    cal = BusinessCalendar.objects.get()
    assert r.status_code == 302 and cal.weekly_hours["0"] == [["09:00", "12:00"], ["13:00", "18:00"]]
    assert cal.weekly_hours["5"] == [["10:00", "16:00"]] and cal.weekly_hours["1"] == []
    r = client.post(reverse("service:sla"), {"form": "day", "calendar": cal.pk, "date": "2026-10-10", "kind": "workday",
                                             "hours": "09:00-17:00"})  # fmt: skip
    assert CalendarDay.objects.get().hours == [["09:00", "17:00"]]
    bad = client.post(reverse("service:sla"), {"form": "calendar", "name": "X", "timezone": "Mars/Olympus"})
    assert bad.status_code == 422 and "Not a known time zone" in bad.content.decode()
    assert login("agent_li").post(reverse("service:sla"), {"form": "policy", "name": "x", "first_response_minutes": "1",
                                                           "resolution_minutes": "2"}).status_code == 403  # fmt: skip
    assert SlaPolicy.objects.count() == 1 and BusinessCalendar.objects.count() == 1


def test_attainment_report_and_csv(login, cast, monkeypatch):
    SlaPolicy.objects.create(name="All", first_response_minutes=60, resolution_minutes=600)
    BusinessCalendar.objects.create(name="24/7", timezone="UTC", is_default=True,
                                    weekly_hours={str(d): [["00:00", "24:00"]] for d in range(7)})  # fmt: skip
    start = timezone.now() - dt.timedelta(days=2)
    monkeypatch.setattr("django.utils.timezone.now", lambda: start)
    customer = f.customer(email=None)
    fast = do_create_ticket(actor=None, customer=customer, subject="fast", team=f.team("Service CN"))
    slow = do_create_ticket(actor=None, customer=customer, subject="slow", team=f.team("Service CN"))
    monkeypatch.setattr("django.utils.timezone.now", lambda: start + dt.timedelta(minutes=30))
    do_add_comment(ticket=fast, actor=cast["agent_li"], body="hi")
    do_set_ticket_status(ticket=fast, actor=cast["agent_li"], status="solved")
    monkeypatch.setattr("django.utils.timezone.now", lambda: start + dt.timedelta(minutes=90))
    do_add_comment(ticket=slow, actor=cast["agent_li"], body="hi")
    monkeypatch.undo()
    client = login("manager")
    page = client.get(reverse("service:reports"), {"group": "team"}).content.decode()
    assert "Service CN" in page and "50.0% (1/2)" in page and "100.0% (1/1)" in page
    csv = b"".join(
        client.get(reverse("service:reports"), {"group": "team", "format": "csv"}).streaming_content
    )
    row = csv.decode("utf-8-sig").splitlines()[1].split(",")
    assert row[:6] == ["Service CN", "2", "2", "50.0", "60.0", "60.0"]
    assert login("agent_li").get(reverse("service:reports")).status_code == 403


def test_tickets_on_the_customer_timeline_scoped_to_the_viewer(cast):
    customer = f.customer()
    cn = do_create_ticket(actor=None, customer=customer, subject="CN one", team=f.team("Service CN"))
    do_create_ticket(actor=None, customer=customer, subject="EN one", team=f.team("Service EN"))
    keys = [e.key for e in build_timeline(customer, user=cast["agent_li"]).entries if e.kind == "ticket"]
    assert keys == [f"ticket:{cn.pk:012d}"]
    assert [e for e in build_timeline(customer, user=cast["analyst"]).entries if e.kind == "ticket"] == []


def test_csv_cells_that_look_like_formulas_are_neutralised(login, cast):
    customer = f.customer()
    do_create_ticket(actor=None, customer=customer, subject='=HYPERLINK("http://evil")')
    text = b"".join(login("manager").get(reverse("service:export")).streaming_content).decode("utf-8-sig")
    assert "'=HYPERLINK" in text


def test_the_ticket_panel_renders_on_the_conversation_page(login, cast):
    customer = f.customer()
    conv = f.conversation(customer, "Service CN", subject="Lid broken")
    ticket = do_create_ticket(actor=None, customer=customer, subject="Lid ticket", conversation=conv)
    page = login("agent_li").get(reverse("conversations:detail", args=[conv.pk])).content.decode()
    assert 'id="ticket-from-conversation"' in page and ticket.reference in page
    assert reverse("service:from_conversation", args=[conv.pk]) in page


def test_link_a_conversation_to_a_ticket_and_watchers_hear_about_customer_replies(
    login, cast, monkeypatch, django_capture_on_commit_callbacks
):
    from ecrm.service.services import do_customer_reply

    customer = f.customer()
    conv = f.conversation(customer, "Service CN")
    ticket = do_create_ticket(actor=None, customer=customer, subject="x", team=f.team("Service CN"))
    client = login("agent_li")
    r = client.post(reverse("service:link_conversation", args=[conv.pk]), {"ticket": ticket.reference})
    assert r.status_code == 302 and list(ticket.conversations.all()) == [conv]
    # another customer's ticket cannot take this conversation
    other = do_create_ticket(actor=None, customer=f.customer("O", "o@example.com"), subject="o")
    client.post(reverse("service:link_conversation", args=[conv.pk]), {"ticket": other.reference})
    assert not other.conversations.exists()
    client.post(reverse("service:watch", args=[ticket.pk]), {"watch": "1"})
    assert list(ticket.watchers.all()) == [cast["agent_li"]]
    sent = []
    monkeypatch.setattr(
        "ecrm.core.consumers.publish", lambda group, payload: sent.append((group, payload["type"]))
    )
    with django_capture_on_commit_callbacks(execute=True):
        do_customer_reply(ticket=ticket, customer=customer, body="any news?")
    assert sent == [(f"user.{cast['agent_li'].pk}", "ticket.customer_reply")]
    client.post(reverse("service:watch", args=[ticket.pk]), {"watch": "0"})
    assert not ticket.watchers.exists()


def test_switch_a_policy_off_and_remove_a_calendar_day(login, cast):
    policy = SlaPolicy.objects.create(name="P", first_response_minutes=10, resolution_minutes=20)
    cal = BusinessCalendar.objects.create(name="C", timezone="UTC", weekly_hours={"0": [["09:00", "17:00"]]})
    day = CalendarDay.objects.create(calendar=cal, date=dt.date(2026, 12, 25), kind="holiday")
    agent = login("agent_li")
    assert (
        agent.post(
            reverse("service:sla"), {"form": "policy_active", "policy": policy.pk, "active": "0"}
        ).status_code
        == 403
    )
    assert SlaPolicy.objects.get().is_active
    client = login("manager")
    client.post(reverse("service:sla"), {"form": "policy_active", "policy": policy.pk, "active": "0"})
    assert not SlaPolicy.objects.get().is_active
    assert do_create_ticket(actor=None, customer=f.customer(), subject="x").sla_policy is None
    client.post(reverse("service:sla"), {"form": "day_remove", "day": day.pk})
    assert not CalendarDay.objects.exists()
