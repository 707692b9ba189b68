"""CSAT on solve (one per ticket, signed link, change within 7 days) and NPS sends by marketing."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from ecrm.customers.models import CustomerTag, Tag
from ecrm.service.models import NpsCampaign, SurveyResponse
from ecrm.service.services import do_create_ticket, do_customer_reply, do_set_ticket_status

from . import factories as f


def _link(message) -> str:
    return re.search(r"https?://\S+", message.body).group(0).split("localhost:8000", 1)[-1]


@pytest.fixture
def solved(cast, django_capture_on_commit_callbacks):
    customer = f.customer()
    ticket = do_create_ticket(actor=None, customer=customer, subject="Kettle", team=f.team("Service CN"),
                              assignee=cast["agent_li"])  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        do_set_ticket_status(ticket=ticket, actor=cast["agent_li"], status="solved")
    return ticket


def test_solving_sends_one_csat_mail_and_reopen_and_solve_does_not_send_again(
    solved, cast, django_capture_on_commit_callbacks
):
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["wang@example.com"]
    assert solved.reference in mail.outbox[0].subject
    do_customer_reply(ticket=solved, customer=solved.customer, body="still broken")
    with django_capture_on_commit_callbacks(execute=True):
        do_set_ticket_status(ticket=solved, actor=cast["agent_li"], status="solved")
    assert len(mail.outbox) == 1
    survey = SurveyResponse.objects.get()
    assert (survey.kind, survey.ticket, survey.agent, survey.team.name) == (
        "csat",
        solved,
        cast["agent_li"],
        "Service CN",
    )


def test_answer_through_the_signed_link_then_change_it_within_7_days(solved, client):
    url = _link(mail.outbox[0])
    page = client.get(url)
    assert page.status_code == 200 and "Kettle" in page.content.decode()
    assert client.post(url, {"score": "2", "comment": "slow"}).status_code == 200
    assert client.post(url, {"score": "4", "comment": "ok in the end"}).status_code == 200
    survey = SurveyResponse.objects.get()
    assert (survey.score, survey.comment) == (4, "ok in the end")
    SurveyResponse.objects.filter(pk=survey.pk).update(answered_at=timezone.now() - dt.timedelta(days=8))
    late = client.post(url, {"score": "1"})
    assert late.status_code == 422 and "no longer be changed" in late.content.decode()
    assert SurveyResponse.objects.get().score == 4


def test_tampered_or_forged_links_and_bad_scores_are_refused(solved, client):
    url = _link(mail.outbox[0])
    token = url.rstrip("/").rsplit("/", 1)[-1]
    tampered = reverse("service:survey", args=[token[:-2] + ("AA" if not token.endswith("AA") else "BB")])
    assert client.get(tampered).status_code == 404
    assert client.post(tampered, {"score": "5"}).status_code == 404
    from django.core import signing

    forged = signing.dumps({"r": SurveyResponse.objects.get().pk, "k": "csat"}, salt="another salt")
    assert client.get(reverse("service:survey", args=[forged])).status_code == 404
    for bad in ("0", "6", "x", ""):
        assert client.post(url, {"score": bad}).status_code == 422
    assert SurveyResponse.objects.get().score is None


def test_a_marketer_sends_nps_to_a_tag_and_the_answer_shows_on_the_customer(
    cast, login, django_capture_on_commit_callbacks
):
    vip = Tag.objects.create(name="vip")
    a, b = f.customer("A", "a@example.com"), f.customer("B", None)
    for c in (a, b):
        CustomerTag.objects.create(customer=c, tag=vip)
    client = login("marketer")
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(reverse("service:nps"), {"name": "Q4 NPS", "tag": "vip"})
    assert r.status_code == 302
    campaign = NpsCampaign.objects.get()
    assert campaign.recipients == 1 and len(mail.outbox) == 1 and mail.outbox[0].to == ["a@example.com"]
    url = _link(mail.outbox[0])
    from django.test import Client

    assert Client().post(url, {"score": "10", "comment": "great"}).status_code == 200
    page = login("manager").get(reverse("customers:detail", args=[a.pk])).content.decode()
    assert 'id="service-profile-panel"' in page and "10 / 10" in page
    assert "100" in login("marketer").get(reverse("service:nps")).content.decode()  # NPS of one promoter


def test_nps_refusals(cast, login):
    client = login("marketer")
    r = client.post(reverse("service:nps"), {"name": "x", "ids": "1, abc"})
    assert r.status_code == 422 and "abc" in r.content.decode()
    assert login("agent_li").post(reverse("service:nps"), {"name": "x", "tag": "vip"}).status_code == 403
    assert NpsCampaign.objects.count() == 0 and not mail.outbox


def test_a_retried_mail_job_does_not_mail_twice(solved):
    from ecrm.service.services.surveys import send_mails

    survey = SurveyResponse.objects.get()
    assert survey.mailed_at is not None and len(mail.outbox) == 1
    assert send_mails([survey.pk]) == 0 and len(mail.outbox) == 1


def test_merging_two_customers_who_answered_the_same_nps_keeps_both_answers(
    cast, login, django_capture_on_commit_callbacks
):
    from ecrm.customers.merge import do_merge_customers

    a, b = f.customer("A", "a@example.com"), f.customer("B", "b@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        login("marketer").post(reverse("service:nps"), {"name": "Q4", "ids": f"{a.pk}, {b.pk}"})
    assert SurveyResponse.objects.count() == 2
    do_merge_customers(survivor=a, merged=b, actor=cast["manager"], field_choices={})
    assert list(SurveyResponse.objects.values_list("customer_id", flat=True)) == [a.pk, a.pk]
