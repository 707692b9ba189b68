"""Background jobs of the service desk: the SLA check every minute, survey mails."""

from __future__ import annotations

from huey import crontab

from ecrm.core.tasks import ecrm_periodic_task, ecrm_task


@ecrm_periodic_task(crontab(minute="*"))
def periodic_sla_check() -> dict[str, int]:
    from .services.sla import check_sla

    return check_sla()


@ecrm_task(atomic=False)  # mails as it goes; each mail is claimed in its own transaction
def send_survey_mails(response_ids: list[int]) -> int:
    from .services.surveys import send_mails

    return send_mails(response_ids)
