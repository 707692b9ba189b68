"""`manage.py seed_contact_center`: demo help articles, conversations and tickets (after `seed`)."""

from __future__ import annotations

from django.core.management import call_command
from django.core.management.base import BaseCommand

from ecrm.service.demo import seed_contact_center


class Command(BaseCommand):
    help = "Seed demo help articles, conversations on every channel and tickets (skipped if any exist)."

    def add_arguments(self, parser):
        parser.add_argument("--conversations", type=int, default=60)

    def handle(self, *args, conversations, **options):
        counts = seed_contact_center(conversations)
        self.stdout.write(", ".join(f"{n} {what}" for what, n in counts.items()))
        call_command("seed_routing", stdout=self.stdout)  # by name: routing sits above service
