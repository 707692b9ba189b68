"""Request timing: every response carries `Server-Timing: app;dur=<ms>` so benchmarks and browser dev
tools see the server's own time, apart from the network and the client."""

from __future__ import annotations

import time

from django.http import HttpRequest, HttpResponse


class ServerTimingMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        start = time.perf_counter()
        response = self.get_response(request)
        response["Server-Timing"] = f"app;dur={(time.perf_counter() - start) * 1000:.1f}"
        return response
