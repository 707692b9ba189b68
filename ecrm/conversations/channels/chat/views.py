"""The chat widget's public HTTP endpoints under /connect/chat/ (no console login; the shop embeds them
from another origin, so bodies are JSON sent as text/plain and answers carry CORS headers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from django.contrib.staticfiles import finders
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from ecrm.core.exceptions import EcrmError, ValidationFailed

from . import services

MAX_BODY = 64 * 1024


def _cors(response: HttpResponse, request: HttpRequest, inbox=None) -> HttpResponse:
    origin = request.headers.get("Origin")
    if origin and (inbox is None or services.origin_allowed(services.chat_config(inbox), origin)):
        response["Access-Control-Allow-Origin"] = origin
        response["Vary"] = "Origin"
        response["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response["Access-Control-Allow-Headers"] = "Content-Type"
        response["Access-Control-Max-Age"] = "600"
    return response


def _error(request: HttpRequest, exc: EcrmError, inbox=None) -> HttpResponse:
    body: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.fields:
        body["fields"] = exc.fields
    if isinstance(exc, services.RateLimited):
        body["retry_after"] = exc.retry_after
    return _cors(JsonResponse(body, status=exc.status), request, inbox)


def _json_body(request: HttpRequest) -> dict[str, Any]:
    if len(request.body) > MAX_BODY:
        raise ValidationFailed("The request is too large.", fields={"body": f"at most {MAX_BODY} bytes"})
    try:
        data = orjson.loads(request.body or b"{}")
    except orjson.JSONDecodeError as exc:
        raise ValidationFailed("Malformed JSON.", code="malformed_json", fields={"body": str(exc)}) from exc
    if not isinstance(data, dict):
        raise ValidationFailed("Send a JSON object.", fields={"body": "must be an object"})
    return data


def _client_address(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR", "")


def _asset(name: str, content_type: str) -> HttpResponse:
    path = finders.find(f"ecrm/chat/{name}")
    if not path:
        raise Http404(name)
    response = HttpResponse(Path(path).read_bytes(), content_type=content_type)
    response["Cache-Control"] = "public, max-age=300"
    response["Access-Control-Allow-Origin"] = "*"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_GET
def widget_js(request: HttpRequest) -> HttpResponse:
    return _asset("widget.js", "text/javascript; charset=utf-8")


@require_GET
def widget_css(request: HttpRequest) -> HttpResponse:
    return _asset("widget.css", "text/css; charset=utf-8")


@csrf_exempt
@require_http_methods(["GET", "OPTIONS"])
def chat_config(request: HttpRequest) -> HttpResponse:
    try:
        inbox = services.chat_inbox(request.GET.get("inbox"))
    except EcrmError as exc:
        return _error(request, exc)
    if request.method == "OPTIONS":
        return _cors(HttpResponse(status=204), request, inbox)
    if not services.origin_allowed(services.chat_config(inbox), request.headers.get("Origin")):
        return _error(request, ValidationFailed("This site may not use this chat.", code="forbidden_origin"))
    response = JsonResponse(services.public_config(inbox))
    response["Cache-Control"] = "no-store"
    return _cors(response, request, inbox)


@csrf_exempt
@require_http_methods(["POST", "OPTIONS"])
def start_session(request: HttpRequest) -> HttpResponse:
    """The pre-chat form: {inbox, anonymous_id, name, email, customer_token} -> a signed session token."""
    if request.method == "OPTIONS":
        return _cors(HttpResponse(status=204), request)
    inbox = None
    try:
        data = _json_body(request)
        inbox = services.chat_inbox(data.get("inbox"))
        if not services.origin_allowed(services.chat_config(inbox), request.headers.get("Origin")):
            raise ValidationFailed("This site may not use this chat.", code="forbidden_origin")
        session, token = services.do_start_session(
            inbox=inbox,
            anonymous_id=data.get("anonymous_id", ""),
            name=data.get("name", ""),
            email=data.get("email", ""),
            customer_token=data.get("customer_token") or "",
            client_address=_client_address(request),
        )
    except EcrmError as exc:
        return _error(request, exc, inbox)
    body = {"token": token, "session": session.session_id, "name": session.name, "email": session.email,
            **services.public_config(inbox)}  # fmt: skip
    return _cors(JsonResponse(body, status=201), request, inbox)


@csrf_exempt
@require_http_methods(["POST", "OPTIONS"])
def offline_message(request: HttpRequest) -> HttpResponse:
    """No agent online: {inbox, name, email, body, anonymous_id} -> an email conversation."""
    if request.method == "OPTIONS":
        return _cors(HttpResponse(status=204), request)
    inbox = None
    try:
        data = _json_body(request)
        inbox = services.chat_inbox(data.get("inbox"))
        if not services.origin_allowed(services.chat_config(inbox), request.headers.get("Origin")):
            raise ValidationFailed("This site may not use this chat.", code="forbidden_origin")
        services.do_leave_offline_message(
            inbox=inbox,
            name=data.get("name", ""),
            email=data.get("email", ""),
            body=data.get("body", ""),
            anonymous_id=data.get("anonymous_id", ""),
            customer_token=data.get("customer_token") or "",
            client_address=_client_address(request),
        )
    except EcrmError as exc:
        return _error(request, exc, inbox)
    return _cors(JsonResponse({"ok": True}, status=201), request, inbox)


@require_GET
def demo_shop(request: HttpRequest) -> HttpResponse:
    """A small shop page with the tracker and the chat widget embedded, to try the widget (and for the
    browser test). `?inbox=<id>` picks the chat inbox; `?customer_token=` plays a signed-in customer."""
    try:
        inbox = services.chat_inbox(request.GET.get("inbox"))
    except EcrmError as exc:
        return _error(request, exc)
    return render(
        request,
        "conversations/test_shop.html",
        {"inbox": inbox, "customer_token": request.GET.get("customer_token", "")[:1000]},
    )
