"""Satisfaction surveys: a CSAT survey mailed when a ticket is solved, NPS sends by marketing, and
answers through a signed public link (no login). One CSAT per ticket; an answer can be changed for
7 days after it was first given."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from ecrm.core.audit import record_audit
from ecrm.core.exceptions import NotFound, ValidationFailed
from ecrm.core.models import User
from ecrm.core.permissions import check_perm
from ecrm.customers.models import Customer

from ..models import NpsCampaign, SurveyKind, SurveyResponse, Ticket

SALT = "ecrm.service.survey"
LINK_MAX_AGE = dt.timedelta(days=30)  # the link itself works for 30 days
CHANGE_WINDOW = dt.timedelta(days=7)  # an answer may be changed for 7 days after it was given
MAX_COMMENT = 4000


def survey_token(response: SurveyResponse) -> str:
    return signing.dumps({"r": response.pk, "k": response.kind}, salt=SALT, compress=True)


def survey_url(response: SurveyResponse) -> str:
    base = getattr(settings, "ECRM_PUBLIC_URL", "http://localhost:8000").rstrip("/")
    return base + reverse("service:survey", args=[survey_token(response)])


def response_for_token(token: str) -> SurveyResponse:
    """The survey a link points to; a tampered, forged or expired link is 'not found'."""
    try:
        data = signing.loads(token, salt=SALT, max_age=LINK_MAX_AGE)
    except signing.SignatureExpired:
        raise NotFound("This survey link has expired.", code="survey_expired") from None
    except signing.BadSignature:
        raise NotFound("This survey link is not valid.", code="survey_invalid") from None
    response = SurveyResponse.objects.select_related("ticket", "customer").filter(pk=data.get("r")).first()
    if response is None or response.kind != data.get("k"):
        raise NotFound("This survey link is not valid.", code="survey_invalid")
    return response


def _mail(response_id: int) -> None:
    response = SurveyResponse.objects.select_related("ticket", "customer").get(pk=response_id)
    email = response.customer.email
    if not email:
        return
    if response.kind == SurveyKind.CSAT:
        subject = _("How did we do? [%(ref)s]") % {
            "ref": response.ticket.reference if response.ticket else ""
        }
        question = _("How satisfied are you with how we handled your request (1–5)?")
    else:
        subject = _("Would you recommend us?")
        question = _("How likely are you to recommend us to a friend (0–10)?")
    body = f"{question}\n\n{survey_url(response)}\n"
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [email])


def schedule_csat(ticket: Ticket) -> SurveyResponse | None:
    """Called inside the solving transaction: the survey row now, the mail after commit. A ticket
    solved again after a reopen is not surveyed twice."""
    if SurveyResponse.objects.filter(ticket=ticket, kind=SurveyKind.CSAT).exists():
        return None
    try:
        with transaction.atomic():
            response = SurveyResponse.objects.create(
                kind=SurveyKind.CSAT, customer_id=ticket.customer_id, ticket=ticket,
                team_id=ticket.team_id, agent_id=ticket.assignee_id, sent_at=timezone.now(),
            )  # fmt: skip
    except IntegrityError:  # solved twice at once
        return None
    if ticket.customer.email:
        transaction.on_commit(lambda: _enqueue_mails([response.pk]))
    return response


def _enqueue_mails(response_ids: list[int]) -> None:
    from ..tasks import send_survey_mails

    # batches: one job per 200 mails, so a large NPS send is retried in parts, not as a whole
    for start in range(0, len(response_ids), 200):
        send_survey_mails(response_ids[start : start + 200])


def send_mails(response_ids: list[int]) -> int:
    """Mail the surveys not mailed yet (idempotent: a retried job does not mail twice)."""
    sent = 0
    for response_id in response_ids:
        with transaction.atomic():
            claimed = SurveyResponse.objects.filter(pk=response_id, mailed_at__isnull=True).update(
                mailed_at=timezone.now()
            )
            if claimed:
                _mail(response_id)
                sent += 1
    return sent


def do_answer_survey(*, response: SurveyResponse, score: Any, comment: str = "") -> SurveyResponse:
    """The customer's answer through the signed link (no login). May be changed for 7 days."""
    errors = {}
    try:
        value = int(str(score).strip())
    except (TypeError, ValueError):
        value = -1
    low = 1 if response.kind == SurveyKind.CSAT else 0
    if not low <= value <= response.max_score:
        errors["score"] = _("Choose a score from %(low)s to %(high)s.") % {
            "low": low,
            "high": response.max_score,
        }
    comment = (comment or "").strip()
    if len(comment) > MAX_COMMENT:
        errors["comment"] = _("At most %(n)s characters.") % {"n": MAX_COMMENT}
    if errors:
        raise ValidationFailed(_("The answer is not valid."), fields=errors)
    now = timezone.now()
    with transaction.atomic():
        locked = SurveyResponse.objects.select_for_update().get(pk=response.pk)
        if locked.answered_at and now - locked.answered_at > CHANGE_WINDOW:
            raise ValidationFailed(
                _("This answer can no longer be changed (7 days have passed)."), code="survey_locked"
            )
        before = {"score": locked.score, "comment": locked.comment}
        locked.score, locked.comment = value, comment
        locked.answered_at = locked.answered_at or now
        locked.updated_at = now
        locked.save(update_fields=["score", "comment", "answered_at", "updated_at"])
        record_audit(
            actor=None, action=f"survey.{locked.kind}.answer", obj=locked,
            before=before, after={"score": value, "comment": comment},
        )  # fmt: skip
    return locked


def nps_audience(*, tag: str = "", ids_text: str = "") -> list[int]:
    """Customer ids from a tag name or a CSV/whitespace list of ids (unknown ids are an error)."""
    import re

    if bool(tag.strip()) == bool(ids_text.strip()):
        raise ValidationFailed(
            _("Choose a tag or paste customer ids (one of the two)."), fields={"audience": "required"}
        )
    if tag.strip():
        ids = list(
            Customer.objects.filter(tags__name__iexact=tag.strip(), status="active").values_list(
                "id", flat=True
            )
        )
        if not ids:
            raise ValidationFailed(_("No customers have this tag."), fields={"tag": "no customers"})
        return sorted(ids)
    tokens = [t for t in re.split(r"[\s,;]+", ids_text.strip()) if t]
    bad = [t for t in tokens if not t.isdigit()]
    if bad:
        raise ValidationFailed(
            _("Not customer ids: %(bad)s") % {"bad": ", ".join(bad[:5])}, fields={"ids": "numbers only"}
        )
    wanted = {int(t) for t in tokens}
    found = set(Customer.objects.filter(pk__in=wanted).values_list("id", flat=True))
    missing = sorted(wanted - found)
    if missing:
        raise ValidationFailed(
            _("Unknown customer ids: %(ids)s") % {"ids": ", ".join(map(str, missing[:10]))},
            fields={"ids": "unknown"},
        )
    return sorted(found)


def do_send_nps(*, actor: User, name: str, tag: str = "", ids_text: str = "") -> NpsCampaign:
    """Marketing sends an NPS survey to a tag or a list of customer ids; customers without an email
    are counted out; the mails go after commit."""
    check_perm(actor, "surveys.send")
    name = (name or "").strip()
    if not name:
        raise ValidationFailed(_("Give the survey a name."), fields={"name": "required"})
    ids = nps_audience(tag=tag, ids_text=ids_text)
    reachable = list(
        Customer.objects.filter(pk__in=ids)
        .exclude(email__isnull=True)
        .exclude(email="")
        .values_list("id", flat=True)
    )
    if not reachable:
        raise ValidationFailed(
            _("None of these customers has an email address."), fields={"audience": "no email"}
        )
    now = timezone.now()
    with transaction.atomic():
        campaign = NpsCampaign.objects.create(
            name=name[:120], audience=f"tag:{tag.strip()}" if tag.strip() else f"ids:{len(ids)}",
            created_by=actor, created_at=now, recipients=len(reachable),
        )  # fmt: skip
        SurveyResponse.objects.bulk_create(
            [
                SurveyResponse(kind=SurveyKind.NPS, customer_id=cid, campaign=campaign, sent_at=now)
                for cid in reachable
            ]
        )
        response_ids = list(campaign.responses.values_list("id", flat=True))
        record_audit(
            actor=actor, action="survey.nps.send", obj=campaign, after={"recipients": len(reachable)}
        )
        transaction.on_commit(lambda: _enqueue_mails(response_ids))
    return campaign
