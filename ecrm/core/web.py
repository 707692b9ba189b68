"""Helpers every console view uses: login + capability checks, domain errors shown readably, pagination."""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .exceptions import EcrmError, PermissionDenied
from .permissions import has_perm


def console_view(capability: str | None = None) -> Callable:
    """Decorator: signed-in staff only; with a capability, refuse (403 page) users who lack it.
    A domain error raised by the view becomes a readable page instead of a 500."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if capability and not has_perm(request.user, capability):
                return forbidden(request)
            try:
                return view(request, *args, **kwargs)
            except PermissionDenied:
                return forbidden(request)
            except EcrmError as exc:
                return render(
                    request,
                    "core/error.html",
                    {"message": exc.message, "fields": exc.fields},
                    status=exc.status,
                )

        return wrapper

    return decorator


def forbidden(request: HttpRequest) -> HttpResponse:
    return render(request, "core/forbidden.html", status=403)


def flash_error(request: HttpRequest, exc: EcrmError) -> None:
    detail = "; ".join(f"{k}: {v}" for k, v in exc.fields.items())
    messages.error(request, f"{exc.message} {detail}".strip())
