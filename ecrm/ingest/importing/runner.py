"""Runs an import job: streams the file, cleans each row, writes chunks of rows in their own
transactions, keeps progress on the job, and writes the refused rows to an error report.

Memory stays flat whatever the file's size: one chunk of rows is held at a time, the first
`ERRORS_KEPT` refusals are kept on the job for the page, and the rest go straight to the error
report file. Each chunk commits together with the job's progress, so a worker that dies mid-file
resumes after the last committed chunk when the task is retried.

A dry run runs exactly the same code and rolls every chunk back, so what it reports is what a
real run would do (up to rows that depend on an earlier chunk of the same dry run).
"""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from ecrm.core.audit import record_audit

from ..models import ImportJob, ImportStatus
from ..sources.base import ChunkResult, CleanRow, Importer, RowRefused
from ..sources.csv import importer_for
from ..sources.reader import UnreadableFile, estimate_rows, open_csv

logger = logging.getLogger(__name__)

CHUNK_SIZE = 5000
ERRORS_KEPT = 100
_INJECTION_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class _DryRun(Exception):
    """Raised to roll a dry-run chunk back."""


def neutralise(cell: Any) -> str:
    """A CSV cell made safe to open in a spreadsheet: text that a spreadsheet would run as a
    formula (= + - @, or a tab/CR before them) is prefixed with an apostrophe."""
    text = "" if cell is None else str(cell)
    return "'" + text if text.startswith(_INJECTION_PREFIXES) else text


@dataclass
class RunSummary:
    """What a run did, for the CLI and the job page."""

    processed: int = 0
    created: int = 0
    updated: int = 0
    refused: int = 0
    seconds: float = 0.0
    error_report: str = ""
    failed: str = ""
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def imported(self) -> int:
        return self.created + self.updated

    @property
    def rows_per_second(self) -> float:
        return self.processed / self.seconds if self.seconds else 0.0


class ErrorReport:
    """The refused rows, as a CSV: row, reason, then the row's own cells (so it can be fixed and
    imported again). Opened on the first refusal, so a clean import leaves no file behind."""

    def __init__(self, path: Path, header: list[str], *, append: bool = False) -> None:
        self.path = path
        self.header = header
        self.append = append and path.exists()
        self._fh: IO[str] | None = None
        self._writer: Any = None

    def add(self, row_no: int, reason: str, cells: list[str]) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # utf-8-sig: Excel opens it with Chinese text intact.
            self._fh = open(self.path, "a" if self.append else "w", encoding="utf-8-sig", newline="")  # noqa: SIM115
            self._writer = csv.writer(self._fh)
            if not self.append:
                self._writer.writerow(["row", "reason", *map(neutralise, self.header)])
        self._writer.writerow([row_no, neutralise(reason), *map(neutralise, cells)])

    @property
    def written(self) -> bool:
        return self._writer is not None or self.append

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


def error_report_path(job: ImportJob) -> tuple[Path, str]:
    """(filesystem path, storage name or '') of the job's error report: next to the file for a
    command-line import, in the media folder for an uploaded one."""
    if job.source_path:
        source = Path(job.source_path)
        return source.with_name(f"{source.stem}.errors.csv"), ""
    name = f"imports/errors/job-{job.pk}-errors.csv"
    return Path(settings.MEDIA_ROOT) / name, name


def column_plan(header: list[str], mapping: dict[str, str]) -> list[tuple[int, str]]:
    """[(column index, field)] for the mapped columns; a repeated column name maps its first copy."""
    plan, seen = [], set()
    for index, column in enumerate(header):
        target = mapping.get(column)
        if target and column not in seen:
            plan.append((index, target))
        seen.add(column)
    return plan


def run_import(
    job: ImportJob,
    *,
    progress: Callable[[RunSummary, int], None] | None = None,
    chunk_size: int | None = None,
) -> RunSummary:
    """Import (or dry-run) the job's file. `progress(summary, bytes_read)` is called after each chunk."""
    resume = (
        not job.dry_run and job.status in (ImportStatus.RUNNING, ImportStatus.FAILED) and job.processed_rows > 0
    )
    chunk_size = chunk_size or CHUNK_SIZE
    summary = RunSummary()
    skip = 0
    if resume:
        skip = job.processed_rows
        summary.processed, summary.refused = job.processed_rows, job.failed_rows
        summary.created, summary.updated = job.created_rows, job.updated_rows
        summary.errors = list(job.errors)
    path = job.source_path or (job.file.path if job.file else "")
    started = time.monotonic()
    importer = importer_for(job.kind)(actor=job.created_by, source=f"import:{job.pk}")
    report_path, report_name = error_report_path(job)
    try:
        source = open_csv(path)
    except UnreadableFile as exc:
        _finish(job, summary, status=ImportStatus.FAILED, message=str(exc), started=started)
        summary.failed = str(exc)
        return summary
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportStatus.RUNNING,
        started_at=job.started_at or timezone.now(),
        total_rows=estimate_rows(path),
        encoding=source.encoding,
    )
    job.refresh_from_db()
    report = ErrorReport(report_path, source.header, append=resume)
    plan = column_plan(source.header, job.mapping)
    chunk: list[CleanRow] = []
    cells_by_row: dict[int, list[str]] = {}

    def refuse(row_no: int, reason: str, cells: list[str]) -> None:
        summary.refused += 1
        if len(summary.errors) < ERRORS_KEPT:
            summary.errors.append({"row": row_no, "error": reason})
        report.add(row_no, reason, cells)

    def flush() -> None:
        result = _write_chunk(importer, chunk, dry_run=job.dry_run, job=job, summary=summary, cells=cells_by_row,
                              refuse=refuse)  # fmt: skip
        summary.created += result.created
        summary.updated += result.updated
        chunk.clear()
        cells_by_row.clear()
        if job.dry_run:
            _save_progress(job, summary)
        if progress:
            progress(summary, source.bytes_read())

    try:
        with source:
            for row_no, cells in source.rows():
                if skip:
                    skip -= 1
                    continue
                summary.processed += 1
                values = {name: (cells[index].strip() if index < len(cells) else "") for index, name in plan}
                try:
                    chunk.append(CleanRow(row_no, importer.clean(values)))
                    cells_by_row[row_no] = cells
                except RowRefused as exc:
                    refuse(row_no, str(exc), cells)
                if len(chunk) >= chunk_size:
                    flush()
            if chunk:
                flush()
    except UnreadableFile as exc:
        # Part of the file was read (and its good rows imported); say where reading stopped.
        report.close()
        summary.failed = str(exc)
        _finish(job, summary, status=ImportStatus.FAILED, message=str(exc), started=started,
                report_name=report_name if report.written else "")  # fmt: skip
        summary.error_report = str(report_path) if report.written else ""
        return summary
    finally:
        report.close()
    summary.error_report = str(report_path) if report.written else ""
    _finish(job, summary, status=ImportStatus.DONE, started=started, report_name=report_name if report.written else "")
    return summary


def _write_chunk(
    importer: Importer,
    rows: list[CleanRow],
    *,
    dry_run: bool,
    job: ImportJob,
    summary: RunSummary,
    cells: dict[int, list[str]],
    refuse: Callable[[int, str, list[str]], None],
) -> ChunkResult:
    """Write one chunk in one transaction (with the job's progress, so both commit or neither).
    If the database refuses the chunk, write its rows one by one so only the bad rows are lost."""
    try:
        return _attempt(importer, rows, dry_run=dry_run, job=job, summary=summary, cells=cells, refuse=refuse)
    except DatabaseError as exc:
        importer.forget_last_write()
        if len(rows) == 1:
            logger.info("import %s row %s refused by the database: %s", job.pk, rows[0].row_no, exc)
            refuse(rows[0].row_no, f"could not be stored: {exc}", cells.get(rows[0].row_no, []))
            if not dry_run:
                _save_progress(job, summary)
            return ChunkResult()
        total = ChunkResult()
        for row in rows:
            total.add(_write_chunk(importer, [row], dry_run=dry_run, job=job, summary=summary, cells=cells,
                                   refuse=refuse))  # fmt: skip
        return total


def _attempt(importer, rows, *, dry_run, job, summary, cells, refuse) -> ChunkResult:
    result = ChunkResult()
    try:
        with transaction.atomic():
            if rows:
                result = importer.write(rows)
            if dry_run:
                raise _DryRun
            _save_progress(job, summary, pending=result)
    except _DryRun:
        pass
    for row_no, reason in result.refused:
        refuse(row_no, reason, cells.get(row_no, []))
    if not dry_run and result.refused:
        _save_progress(job, summary, pending=result)
    return result


def _save_progress(job: ImportJob, summary: RunSummary, pending: ChunkResult | None = None) -> None:
    created = summary.created + (pending.created if pending else 0)
    updated = summary.updated + (pending.updated if pending else 0)
    ImportJob.objects.filter(pk=job.pk).update(
        processed_rows=summary.processed,
        created_rows=created,
        updated_rows=updated,
        imported_rows=created + updated,
        failed_rows=summary.refused,
        errors=summary.errors,
    )


def _finish(job: ImportJob, summary: RunSummary, *, status: str, started: float, message: str = "",
            report_name: str = "") -> None:  # fmt: skip
    summary.seconds = time.monotonic() - started
    job.refresh_from_db()
    job.status = status
    job.processed_rows = summary.processed
    job.total_rows = max(summary.processed, 0) if status == ImportStatus.DONE else job.total_rows
    job.created_rows, job.updated_rows = summary.created, summary.updated
    job.imported_rows = summary.imported
    job.failed_rows = summary.refused
    job.errors = summary.errors
    job.message = message
    job.finished_at = timezone.now()
    if report_name:
        job.error_file.name = report_name
    job.save()
    if not job.dry_run and (summary.processed or status == ImportStatus.DONE):
        # One audit entry per import, not one per row: who imported what, and the counts.
        record_audit(
            actor=job.created_by,
            action="import.run",
            obj=job,
            after={
                "kind": job.kind,
                "file": job.source_path or job.original_name,
                "rows": summary.processed,
                "created": summary.created,
                "updated": summary.updated,
                "refused": summary.refused,
                "status": status,
            },
        )
