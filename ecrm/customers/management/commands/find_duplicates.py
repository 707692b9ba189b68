"""`manage.py find_duplicates`: scan every customer for likely duplicates and fill the review queue."""

from django.core.management.base import BaseCommand

from ecrm.customers.duplicates import scan_all


class Command(BaseCommand):
    help = "Scan all active customers in blocks and queue likely duplicate pairs for review."

    def add_arguments(self, parser):
        parser.add_argument("--block", type=int, default=1000, help="Customers per block (default 1000).")
        parser.add_argument("--threshold", type=float, default=0.7, help="Minimum score to queue a pair.")

    def handle(self, *args, block, threshold, **options):
        def progress(last_id, found):
            if options["verbosity"] > 1:
                self.stdout.write(f"… up to customer #{last_id}: {found} pairs")

        found = scan_all(block=block, threshold=threshold, progress=progress)
        self.stdout.write(self.style.SUCCESS(f"Done: {found} likely duplicate pairs queued or updated."))
