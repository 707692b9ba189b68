"""`manage.py seed --customers N`: build the demo shop on the current database.

Refuses when customers already exist (so `make seed` twice does not double the shop); `--add`
adds N more customers with new emails and phones, reusing the catalogue.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from ecrm.ingest.demo import SeedRefused, seed_demo


class Command(BaseCommand):
    help = "Fill the database with a believable demo shop (catalogue, customers, orders, web sessions)."

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=5000, help="customer profiles to create (5000)")
        parser.add_argument(
            "--seed", type=int, default=42, help="random seed: the same seed gives the same shop"
        )
        parser.add_argument("--days", type=int, default=730, help="days of order history (730)")
        parser.add_argument(
            "--event-days",
            type=int,
            default=180,
            help="days of web sessions: the tracker went live this long ago (180)",
        )
        parser.add_argument("--add", action="store_true", help="add customers when the database has some")

    def handle(self, *args, customers, seed, days, event_days, add, **options):
        if customers < 1 or days < 1 or event_days < 1:
            raise CommandError("--customers, --days and --event-days must be positive")
        verbose = options.get("verbosity", 1) >= 1

        def progress(done: int, total: int) -> None:
            if verbose:
                self.stdout.write(f"  {done:,} / {total:,} customers", ending="\r")
                self.stdout.flush()

        try:
            report = seed_demo(
                customers=customers, seed=seed, days=days, event_days=event_days, add=add, progress=progress
            )
        except SeedRefused as exc:
            raise CommandError(str(exc)) from exc
        if verbose:
            self.stdout.write("")
            self.stdout.write(self.style.SUCCESS(f"Seeded a demo shop in {report.seconds:.1f} s:"))
            for line in report.lines():
                self.stdout.write(line)
