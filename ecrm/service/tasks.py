"""Background jobs of the service desk: the SLA check every minute."""

from __future__ import annotations

from huey import crontab

from ecrm.core.tasks import ecrm_periodic_task


@ecrm_periodic_task(crontab(minute="*"))
def periodic_sla_check() -> dict[str, int]:
    from .services.sla import check_sla

    return check_sla()
