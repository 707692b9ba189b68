"""`manage.py restore ARCHIVE --target DIR [--database-url URL]`: restore a backup and verify it."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from ecrm.core.backup import BackupError, restore_backup


class Command(BaseCommand):
    help = (
        "Restore a backup into an empty directory (SQLite: the database file and the uploaded files) and, "
        "for a PostgreSQL backup, into an empty database; then verify checksums, integrity, migrations "
        "and row counts against the backup's manifest."
    )

    def add_arguments(self, parser):
        parser.add_argument("archive")
        parser.add_argument("--target", required=True, help="An empty directory (created if missing).")
        parser.add_argument("--database-url", default="", help="For a PostgreSQL backup: an empty database.")

    def handle(self, *args, archive, target, database_url, **options):
        try:
            report = restore_backup(archive, target=target, database_url=database_url)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        manifest = report.manifest
        self.stdout.write(
            f"Backup of {manifest['created_at']} ({manifest['db_vendor']}) restored to {report.target}"
        )
        for check, result in report.checks.items():
            self.stdout.write(f"  {check}: {result}")
        for note in report.notes:
            self.stdout.write(self.style.WARNING(f"  note: {note}"))
        where = database_url and "the database at --database-url" or f"SQLITE_PATH={report.target}/db.sqlite3"
        self.stdout.write(self.style.SUCCESS(f"Verified. Point the app at {where} (files: {report.target})."))
