"""`manage.py backup`: a consistent online backup of the database and the uploaded files (core/backup.py)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from ecrm.core.backup import BackupError, archive_summary, create_backup


class Command(BaseCommand):
    help = "Back up the database (SQLite backup API or pg_dump) and the uploaded files into one .tar.gz."

    def add_arguments(self, parser):
        parser.add_argument(
            "--output", "-o", default="", help="A directory (the file is named by date) or a .tar.gz path."
        )

    def handle(self, *args, output, **options):
        try:
            path, manifest = create_backup(output or None)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        rows = sum(manifest["row_counts"].values())
        files = sum(manifest["file_counts"].values())
        self.stdout.write(
            f"{manifest['db_vendor']} database ({rows} rows in key tables) and {files} files backed up."
        )
        self.stdout.write(self.style.SUCCESS(f"{path}  {archive_summary(path)}"))
