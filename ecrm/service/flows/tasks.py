"""Background job of ticket flows: the stage SLA warnings and breaches, every minute."""

from __future__ import annotations

from huey import crontab

from ecrm.core.tasks import ecrm_periodic_task


@ecrm_periodic_task(crontab(minute="*"))
def periodic_stage_sla_check() -> int:
    from .services import check_stage_sla, check_stage_warnings

    check_stage_warnings()
    return check_stage_sla()
