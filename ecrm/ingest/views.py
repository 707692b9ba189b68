"""Console pages of the ingest app: CSV import (upload, mapping, preview, dry run, run, progress,
error report)."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ecrm.core.exceptions import Conflict, ValidationFailed
from ecrm.core.web import console_view, flash_error

from .forms import MappingForm, UploadForm
from .importing.preview import preview_import
from .importing.selectors import access_import_job_for_user, import_jobs_for_user
from .importing.services import do_create_import_job, do_set_import_mapping, do_start_import_job
from .models import ImportStatus
from .sources.csv import importer_for

ACTIVE = (ImportStatus.QUEUED, ImportStatus.RUNNING)


@console_view("imports.run")
@require_http_methods(["GET", "POST"])
def imports(request: HttpRequest) -> HttpResponse:
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = do_create_import_job(kind=form.cleaned_data["kind"], upload=form.cleaned_data["file"], actor=request.user)
        except ValidationFailed as exc:
            form.add_error("file", exc.fields.get("file") or exc.message)
        else:
            problems = importer_for(job.kind).check_mapping(job.mapping)
            if problems:
                messages.warning(request, _("Check which field each column fills, then preview."))
                return redirect("ingest:import_mapping", job_id=job.pk)
            messages.success(request, _("Every column was recognised from the header. Check the preview, then import."))
            return redirect("ingest:import_preview", job_id=job.pk)
    page = Paginator(import_jobs_for_user(request.user), 25).get_page(request.GET.get("page"))
    status = 400 if request.method == "POST" else 200
    return render(request, "ingest/imports.html", {"form": form, "page": page}, status=status)


@console_view("imports.run")
@require_http_methods(["GET", "POST"])
def import_mapping(request: HttpRequest, job_id: int) -> HttpResponse:
    job = access_import_job_for_user(request.user, job_id)
    form = MappingForm(request.POST or None, job=job)
    if request.method == "POST" and form.is_valid():
        try:
            do_set_import_mapping(job=job, mapping=form.mapping(), actor=request.user)
        except ValidationFailed as exc:
            for column, problem in exc.fields.items():
                if column in job.header:
                    form.add_error(f"col_{job.header.index(column)}", problem)
                else:
                    form.add_error(None, problem)
        except Conflict as exc:
            flash_error(request, exc)
            return redirect("ingest:import_job", job_id=job.pk)
        else:
            return redirect("ingest:import_preview", job_id=job.pk)
    fields = importer_for(job.kind).available_fields()
    return render(request, "ingest/import_mapping.html", {"job": job, "form": form, "fields": fields},
                  status=400 if form.errors else 200)  # fmt: skip


@console_view("imports.run")
@require_GET
def import_preview(request: HttpRequest, job_id: int) -> HttpResponse:
    job = access_import_job_for_user(request.user, job_id)
    problems = importer_for(job.kind).check_mapping(job.mapping)
    if problems:
        messages.warning(request, " ".join(problems.values()))
        return redirect("ingest:import_mapping", job_id=job.pk)
    fields, rows = preview_import(job)
    labels = {f.name: f.label for f in importer_for(job.kind).available_fields()}
    context = {
        "job": job,
        "columns": [labels.get(f, f) for f in fields],
        "rows": rows,
        "refused": sum(1 for r in rows if r.error),
    }
    return render(request, "ingest/import_preview.html", context)


@console_view("imports.run")
@require_POST
def import_run(request: HttpRequest, job_id: int) -> HttpResponse:
    job = access_import_job_for_user(request.user, job_id)
    dry_run = request.POST.get("dry_run") == "1"
    try:
        do_start_import_job(job=job, dry_run=dry_run, actor=request.user)
    except (Conflict, ValidationFailed) as exc:
        flash_error(request, exc)
    return redirect("ingest:import_job", job_id=job.pk)


def _job_context(job) -> dict:
    percent = 0
    if job.status == ImportStatus.DONE:
        percent = 100
    elif job.total_rows:
        percent = min(99, int(job.processed_rows * 100 / job.total_rows))
    return {"job": job, "active": job.status in ACTIVE, "percent": percent}


@console_view("imports.run")
@require_GET
def import_job(request: HttpRequest, job_id: int) -> HttpResponse:
    job = access_import_job_for_user(request.user, job_id)
    return render(request, "ingest/import_job.html", _job_context(job))


@console_view("imports.run")
@require_GET
def import_progress(request: HttpRequest, job_id: int) -> HttpResponse:
    """The part of the job page that htmx polls while the import runs."""
    job = access_import_job_for_user(request.user, job_id)
    return render(request, "ingest/partials/_import_progress.html", _job_context(job))


@console_view("imports.run")
@require_GET
def import_errors(request: HttpRequest, job_id: int) -> HttpResponse:
    job = access_import_job_for_user(request.user, job_id)
    if not job.error_file:
        raise Http404(_("This import has no refused rows."))
    try:
        handle = job.error_file.open("rb")
    except FileNotFoundError:
        raise Http404(_("The error report is no longer available.")) from None
    stem = (job.original_name or job.kind).rsplit(".", 1)[0]
    return FileResponse(handle, as_attachment=True, filename=f"{stem}-refused-rows.csv", content_type="text/csv")
