"""`manage.py ticket_flows_export [-o file.yaml]`: every ticket flow as YAML (stdout by default)."""

from __future__ import annotations

import yaml
from django.core.management.base import BaseCommand

from ecrm.service.flows.yaml import export_machines


class Command(BaseCommand):
    help = "Export the ticket flows (state machines per ticket type) as YAML."

    def add_arguments(self, parser):
        parser.add_argument("-o", "--output", help="write to this file instead of stdout")

    def handle(self, *args, output=None, **options):
        text = yaml.safe_dump(export_machines(), allow_unicode=True, sort_keys=False)
        if output:
            with open(output, "w", encoding="utf-8") as f:
                f.write(text)
            self.stdout.write(f"wrote {output}")
        else:
            self.stdout.write(text, ending="")
