"""`manage.py import {customers,products,orders,order_lines} PATH [--dry-run] [--mapping col=field ...]`

Imports a CSV file on the server with a progress bar on stderr and a summary at the end. The
refused rows go to PATH's name + `.errors.csv` next to it. The exit code is non-zero only when the
file cannot be read at all: refused rows are reported, not fatal.
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from ecrm.core.exceptions import EcrmError
from ecrm.core.models import User
from ecrm.ingest.importing.runner import RunSummary
from ecrm.ingest.importing.services import do_create_cli_import_job, do_run_import_job
from ecrm.ingest.models import ImportKind, ImportStatus


def parse_mapping(pairs: list[str]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        column, sep, target = pair.partition("=")
        if not sep or not column.strip():
            raise CommandError(f"--mapping {pair!r}: use COLUMN=FIELD (FIELD empty to ignore the column)")
        mapping[column.strip()] = target.strip()
    return mapping


class Command(BaseCommand):
    help = "Import customers, products, orders or order lines from a CSV file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", choices=ImportKind.values)
        parser.add_argument("path")
        parser.add_argument("--dry-run", action="store_true", help="Validate every row and write nothing.")
        parser.add_argument(
            "--mapping", nargs="+", default=[], metavar="COLUMN=FIELD",
            help="Map a column to a field (overrides the mapping suggested from the header).",
        )  # fmt: skip
        parser.add_argument("--user", help="Record the import as done by this user (default: system).")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar (for logs).")

    def handle(self, *args, kind: str, path: str, dry_run: bool, mapping: list[str], **options) -> None:
        actor = None
        if options.get("user"):
            actor = User.objects.filter(username=options["user"]).first()
            if actor is None:
                raise CommandError(f"No user {options['user']!r}.")
        try:
            job = do_create_cli_import_job(
                kind=kind, path=path, actor=actor, mapping=parse_mapping(mapping), dry_run=dry_run
            )
        except EcrmError as exc:
            raise CommandError(exc.message) from None

        mapped = ", ".join(f"{c}→{f}" for c, f in job.mapping.items() if f) or "nothing"
        ignored = [c for c, f in job.mapping.items() if not f]
        self.stderr.write(f"{'Dry run: ' if dry_run else ''}importing {kind} from {job.original_name} "
                          f"({job.encoding}); columns: {mapped}")  # fmt: skip
        if ignored:
            self.stderr.write(f"Ignored columns: {', '.join(ignored)}")

        bar = tqdm(
            total=job.file_size, unit="B", unit_scale=True, unit_divisor=1024, file=getattr(self.stderr, "_out", sys.stderr),
            disable=options["no_progress"], desc=kind, dynamic_ncols=True,
        )  # fmt: skip

        def progress(summary: RunSummary, bytes_read: int) -> None:
            bar.update(max(0, min(bytes_read, job.file_size) - bar.n))
            bar.set_postfix(rows=summary.processed, refused=summary.refused, refresh=False)

        summary = do_run_import_job(job_id=job.pk, progress=progress)
        bar.update(job.file_size - bar.n)
        bar.close()
        job.refresh_from_db()
        if summary is None or job.status == ImportStatus.FAILED and not summary.processed:
            raise CommandError(job.message or "The import did not run.")
        verb = "would import" if dry_run else "imported"
        self.stdout.write(
            f"{'Dry run: ' if dry_run else ''}{summary.processed} rows read, {verb} {summary.imported} "
            f"({summary.created} new, {summary.updated} updated), refused {summary.refused}, "
            f"in {summary.seconds:.1f} s ({summary.rows_per_second:,.0f} rows/s)."
        )
        if summary.failed:
            self.stdout.write(self.style.WARNING(f"Stopped early: {summary.failed}"))
        if summary.error_report:
            self.stdout.write(f"Error report: {summary.error_report}")
