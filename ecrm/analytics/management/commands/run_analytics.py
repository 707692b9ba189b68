"""`manage.py run_analytics [--observation-end YYYY-MM-DD]`: run the customer models now and print
the run's JSON summary (fitted parameters, holdout metrics, durations, counts). Exit code 1 when the
run failed or was rejected, so cron and CI notice."""

from __future__ import annotations

import datetime as dt
import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ecrm.analytics.models import RunStatus, RunTrigger
from ecrm.analytics.services import active_run, run_analytics, run_summary


def parse_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--observation-end {value!r}: use YYYY-MM-DD") from None


class Command(BaseCommand):
    help = "Run the customer models (RFM, CLV, churn, clusters, rules, cohorts) and store the scores."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--observation-end", type=parse_date, default=None,
                            help="last day of data to use, in the shop's time zone (default: today)")  # fmt: skip
        parser.add_argument(
            "--force", action="store_true", help="run even if another run is queued or running"
        )

    def handle(self, *args, observation_end=None, force=False, **options) -> None:
        if not force and (running := active_run()) is not None:
            raise CommandError(f"Run #{running.pk} is {running.status}; use --force to run anyway.")
        run = run_analytics(observation_end=observation_end, trigger=RunTrigger.CLI)
        self.stdout.write(json.dumps(run_summary(run), indent=2, ensure_ascii=False))
        if run.status != RunStatus.SUCCEEDED:
            raise CommandError(f"Run #{run.pk} {run.status}: {run.error}")
