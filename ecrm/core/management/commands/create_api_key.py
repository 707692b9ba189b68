"""Print a new integration key: `manage.py create_api_key --name shop --scope write`."""

from django.core.management.base import BaseCommand, CommandError

from ecrm.core.exceptions import EcrmError
from ecrm.core.models import ApiKeyScope
from ecrm.core.services import do_create_api_key


class Command(BaseCommand):
    help = "Create an API key and print it (shown once; stored hashed)."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--scope", choices=ApiKeyScope.values, default=ApiKeyScope.READ)

    def handle(self, *args, name, scope, **options):
        try:
            _, raw = do_create_api_key(name=name, scope=scope, actor=None)
        except EcrmError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(raw)
