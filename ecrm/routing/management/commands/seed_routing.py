"""`manage.py seed_routing`: demo agents' skills and capacities, queues, and the open demo work
routed once (run by seed_contact_center; safe to run again)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from ecrm.routing.demo import seed_routing


class Command(BaseCommand):
    help = "Give the demo agents skills and capacities, create demo queues, and route the open work."

    def handle(self, *args, **options):
        counts = seed_routing()
        self.stdout.write(", ".join(f"{n} {what}" for what, n in counts.items()))
