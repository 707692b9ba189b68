"""Reads of import jobs, each checking that the user may run imports."""

from __future__ import annotations

from django.db.models import QuerySet

from ecrm.core.exceptions import NotFound
from ecrm.core.models import User
from ecrm.core.permissions import check_perm

from ..models import ImportJob


def import_jobs_for_user(user: User) -> QuerySet[ImportJob]:
    check_perm(user, "imports.run")
    return ImportJob.objects.select_related("created_by").defer("errors", "header", "mapping")


def access_import_job_for_user(user: User, job_id: int) -> ImportJob:
    check_perm(user, "imports.run")
    job = ImportJob.objects.select_related("created_by").filter(pk=job_id).first()
    if job is None:
        raise NotFound("No such import.")
    return job
