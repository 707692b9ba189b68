"""Writes on import jobs. Views, the CLI and the background task all go through these."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.template.defaultfilters import filesizeformat

from ecrm.core.exceptions import Conflict, ValidationFailed
from ecrm.core.models import User
from ecrm.core.permissions import check_perm

from ..models import ImportJob, ImportKind, ImportStatus
from ..sources.csv import importer_for
from ..sources.reader import UnreadableFile, open_csv
from .runner import RunSummary, run_import

MAX_UPLOAD_BYTES = getattr(settings, "ECRM_IMPORT_MAX_BYTES", 200 * 1024 * 1024)
# Files up to this size import inside the request (a second or two); larger ones go to the worker.
INLINE_BYTES = getattr(settings, "ECRM_IMPORT_INLINE_BYTES", 256 * 1024)


def _check_actor(actor: Any) -> None:
    # The command line runs as a named user or as the system (None); console users need the role.
    if actor is not None:
        check_perm(actor, "imports.run")


def _check_kind(kind: str) -> None:
    if kind not in ImportKind.values:
        raise ValidationFailed(
            f"Unknown import kind {kind!r}.", fields={"kind": f"Choose one of {', '.join(ImportKind.values)}."}
        )


def _read_header(job: ImportJob, path: str) -> None:
    try:
        with open_csv(path) as source:
            job.header = source.header
            job.encoding = source.encoding
    except UnreadableFile as exc:
        raise ValidationFailed(str(exc), fields={"file": str(exc)}) from None


def do_create_import_job(*, kind: str, upload: UploadedFile, actor: User) -> ImportJob:
    """Store an uploaded CSV as a new job, with the column mapping suggested from its header."""
    _check_actor(actor)
    _check_kind(kind)
    if upload.size > MAX_UPLOAD_BYTES:
        message = (
            f"The file is {filesizeformat(upload.size)}; the limit for uploads is {filesizeformat(MAX_UPLOAD_BYTES)}. "
            "Split it, or import it on the server with `manage.py import`."
        )
        raise ValidationFailed(message, fields={"file": message})
    if not upload.size:
        raise ValidationFailed("The file is empty.", fields={"file": "The file is empty."})
    name = Path(upload.name or "import.csv").name[:255]
    job = ImportJob(kind=kind, original_name=name, file_size=upload.size, created_by=actor)
    job.file.save(f"{kind}.csv", upload, save=False)
    try:
        _read_header(job, job.file.path)
    except ValidationFailed:
        job.file.delete(save=False)
        raise
    job.mapping = importer_for(kind).suggest_mapping(job.header)
    job.save()
    return job


def do_create_cli_import_job(
    *, kind: str, path: str, actor: User | None, mapping: dict[str, str] | None = None, dry_run: bool = False
) -> ImportJob:
    """A job for a file on the server (the `import` command): read in place, not copied."""
    _check_actor(actor)
    _check_kind(kind)
    resolved = Path(path).resolve()
    job = ImportJob(
        kind=kind, source_path=str(resolved), original_name=resolved.name[:255], created_by=actor, dry_run=dry_run
    )
    try:
        job.file_size = resolved.stat().st_size
    except OSError as exc:
        raise ValidationFailed(f"Cannot read {path}: {exc.strerror}.", fields={"path": str(exc.strerror)}) from None
    _read_header(job, str(resolved))
    suggested = importer_for(kind).suggest_mapping(job.header)
    job.mapping = _checked_mapping(job, {**suggested, **(mapping or {})})
    job.save()
    return job


def _checked_mapping(job: ImportJob, mapping: dict[str, str]) -> dict[str, str]:
    unknown = [column for column in mapping if column not in job.header]
    if unknown:
        raise ValidationFailed(
            "The file has no column " + ", ".join(repr(c) for c in unknown) + ".",
            fields={c: "not a column of the file" for c in unknown},
        )
    clean = {column: (mapping.get(column) or "") for column in job.header}
    problems = importer_for(job.kind).check_mapping(clean)
    if problems:
        raise ValidationFailed(" ".join(problems.values()), fields=problems)
    return clean


def do_set_import_mapping(*, job: ImportJob, mapping: dict[str, str], actor: User) -> ImportJob:
    _check_actor(actor)
    if job.status in (ImportStatus.QUEUED, ImportStatus.RUNNING):
        raise Conflict("The import is running; its mapping cannot change now.")
    if job.status == ImportStatus.DONE and not job.dry_run:
        raise Conflict("This file has been imported already. Upload it again to import it with another mapping.")
    job.mapping = _checked_mapping(job, mapping)
    job.save(update_fields=["mapping"])
    return job


def do_start_import_job(*, job: ImportJob, dry_run: bool, actor: User | None) -> ImportJob:
    """Queue the job (a dry run or the real import). Small files run at once; others in the worker."""
    _check_actor(actor)
    with transaction.atomic():
        locked = ImportJob.objects.select_for_update().get(pk=job.pk)
        if locked.status in (ImportStatus.QUEUED, ImportStatus.RUNNING):
            raise Conflict("This import is already running.")
        if locked.status == ImportStatus.DONE and not locked.dry_run:
            raise Conflict("This file has been imported already.")
        problems = importer_for(locked.kind).check_mapping(locked.mapping)
        if problems:
            raise ValidationFailed(" ".join(problems.values()), fields=problems)
        locked.dry_run = dry_run
        locked.status = ImportStatus.QUEUED
        locked.processed_rows = locked.imported_rows = locked.failed_rows = 0
        locked.created_rows = locked.updated_rows = 0
        locked.errors = []
        locked.message = ""
        locked.started_at = locked.finished_at = None
        if locked.error_file:
            locked.error_file.delete(save=False)
        locked.save()
        if locked.file_size > INLINE_BYTES:
            from ..tasks import run_import_job

            transaction.on_commit(lambda: run_import_job(locked.pk))
    if locked.file_size <= INLINE_BYTES:
        run_import(locked)
        locked.refresh_from_db()
    return locked


def do_run_import_job(*, job_id: int, progress=None) -> RunSummary | None:
    """Run a queued (or interrupted) job to the end; what the background task and the CLI call.
    Idempotent: a job that is already done is left alone."""
    job = ImportJob.objects.select_related("created_by").filter(pk=job_id).first()
    if job is None or job.status == ImportStatus.DONE:
        return None
    return run_import(job, progress=progress)
