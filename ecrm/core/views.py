"""Console pages owned by core: sign-in, the home dashboard, integrations, failed jobs, audit log."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from . import selectors
from .exceptions import EcrmError
from .models import ApiKeyScope
from .services import do_create_api_key, do_revoke_api_key
from .tasks import HUEY
from .web import console_view, flash_error


class LoginView(auth_views.LoginView):
    template_name = "core/login.html"
    redirect_authenticated_user = True


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("core:login")


@console_view()
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "core/home.html", {"figures": selectors.home_figures(request.user)})


@console_view("integrations.manage")
def integrations(request: HttpRequest) -> HttpResponse:
    new_key = None
    if request.method == "POST":
        try:
            key, raw = do_create_api_key(
                name=request.POST.get("name", ""), scope=request.POST.get("scope", ""), actor=request.user
            )
            new_key = {"name": key.name, "raw": raw, "scope": key.get_scope_display()}
            messages.success(request, _("Key created. Copy it now: it will not be shown again."))
        except EcrmError as exc:
            flash_error(request, exc)
    context = {
        "keys": selectors.api_keys_for_user(request.user),
        "scopes": ApiKeyScope.choices,
        "new_key": new_key,
        "tracker_key": selectors.tracker_key_prefix(),
        "base_url": request.build_absolute_uri("/").rstrip("/"),
    }
    return render(request, "core/integrations.html", context)


@require_POST
@console_view("integrations.manage")
def revoke_key(request: HttpRequest, key_id: int) -> HttpResponse:
    key = do_revoke_api_key(key_id=key_id, actor=request.user)
    messages.success(request, _("Key “%(name)s” revoked.") % {"name": key.name})
    return redirect("core:integrations")


@console_view("jobs.view")
def failed_jobs(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.failed_jobs_for_user(request.user), 50).get_page(request.GET.get("page"))
    return render(request, "core/failed_jobs.html", {"page": page})


@require_POST
@console_view("jobs.view")
def retry_job(request: HttpRequest, job_id: int) -> HttpResponse:
    from .services import do_retry_failed_job

    do_retry_failed_job(job_id=job_id, actor=request.user)
    messages.success(request, _("Job sent back to the queue."))
    return redirect("core:failed_jobs")


@console_view("audit.view")
def audit_log(request: HttpRequest) -> HttpResponse:
    entries = selectors.audit_entries_for_user(
        request.user, object_type=request.GET.get("type") or None, object_id=request.GET.get("id") or None
    )
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    return render(request, "core/audit_log.html", {"page": page})


def healthz(request: HttpRequest) -> JsonResponse:
    """Database, queue, worker liveness and the job ledger, for load balancers and monitoring (core/health.py).
    Unauthenticated on purpose: states, counts and ages only, no hosts, paths or errors."""
    from .health import run_checks

    report, status = run_checks(HUEY)
    response = JsonResponse(report, status=status)
    response["Cache-Control"] = "no-store"
    return response
