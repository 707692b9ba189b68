"""Background jobs of the ingest app."""

from __future__ import annotations

from ecrm.core.tasks import ecrm_task


@ecrm_task(retries=2, retry_delay=30, atomic=False)  # commits chunk by chunk, resumes after the last
def run_import_job(job_id: int) -> None:
    """Import a queued CSV job. A retry resumes after the last committed chunk."""
    from .importing.services import do_run_import_job

    do_run_import_job(job_id=job_id)
