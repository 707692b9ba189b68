"""`manage.py ticket_flows_import file.yaml [--dry-run]`: create or update ticket flows by name.
Validates every flow first; saves nothing if one is invalid (exit status 1, errors per flow)."""

from __future__ import annotations

import yaml
from django.core.management.base import BaseCommand, CommandError

from ecrm.service.flows.yaml import import_machines


class Command(BaseCommand):
    help = "Import ticket flows from YAML (all or nothing; --dry-run only checks)."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args, path, dry_run=False, **options):
        try:
            with open(path, encoding="utf-8") as f:
                data = yaml.safe_load(f) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise CommandError(f"cannot read {path}: {exc}") from None
        report = import_machines(data if isinstance(data, dict) else {}, dry_run=dry_run)
        for m in report["machines"]:
            self.stdout.write(f"{m['name'] or '?'}: {m['action']}")
            for field, message in m["errors"].items():
                self.stdout.write(f"  {field}: {message}")
        if not report["ok"]:
            raise CommandError("nothing was imported: fix the flows above")
        self.stdout.write("dry run: nothing saved" if dry_run else "imported")
