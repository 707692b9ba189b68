"""manage.py workflows_export [FILE]: the rules (and ticket flows) as YAML, to FILE or stdout."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand

from ecrm.workflows.yaml_io import export_yaml


class Command(BaseCommand):
    help = "Export the workflow rules (and ticket flows) as YAML."

    def add_arguments(self, parser):
        parser.add_argument("file", nargs="?", help="write here instead of standard output")
        parser.add_argument("--rules-only", action="store_true", help="leave the ticket flows out")

    def handle(self, *args, **options):
        text = export_yaml(include_flows=not options["rules_only"])
        if options["file"]:
            Path(options["file"]).write_text(text, encoding="utf-8")
            self.stderr.write(f"wrote {options['file']}")
        else:
            self.stdout.write(text, ending="")
