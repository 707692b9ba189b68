"""manage.py workflows_import FILE [--dry-run]: validate everything, then create or update rules
(and ticket flows) by name. Exits 1 and saves nothing when any rule or flow is invalid."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ecrm.core.exceptions import ValidationFailed
from ecrm.workflows.yaml_io import import_yaml


class Command(BaseCommand):
    help = "Import workflow rules (and ticket flows) from YAML."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--dry-run", action="store_true", help="validate and report, change nothing")

    def handle(self, *args, **options):
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"no such file: {path}")
        try:
            report = import_yaml(path.read_bytes(), dry_run=options["dry_run"])
        except ValidationFailed as exc:
            raise CommandError(f"{exc.message} {exc.fields}") from exc
        for entry in report["rules"]:
            self.stdout.write(f"rule {entry['name'] or '?'}: {entry['action']}")
            for key, message in entry["errors"].items():
                self.stdout.write(f"    {key}: {message}")
        flows = report.get("ticket_flows")
        if isinstance(flows, dict):
            for entry in flows.get("machines", []):
                self.stdout.write(f"ticket flow {entry['name'] or '?'}: {entry['action']}")
                for key, message in entry.get("errors", {}).items():
                    self.stdout.write(f"    {key}: {message}")
            if flows.get("error"):
                self.stdout.write(f"ticket flows: {flows['error']}")
        if not report["ok"]:
            raise CommandError("nothing was imported: fix the errors above")
        self.stdout.write("dry run: nothing saved" if options["dry_run"] else "imported")
