"""The REST API root (django-ninja): routers from each app, and domain errors mapped to HTTP once."""

from __future__ import annotations

import orjson
from django.http import HttpRequest
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, ValidationError
from ninja.parser import Parser
from ninja.renderers import BaseRenderer

from ecrm.core.api_auth import api_auth
from ecrm.core.exceptions import EcrmError


class ORJSONParser(Parser):
    def parse_body(self, request: HttpRequest):
        return orjson.loads(request.body)


class ORJSONRenderer(BaseRenderer):
    media_type = "application/json"

    def render(self, request, data, *, response_status):
        return orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)


api = NinjaAPI(
    title="eCRM API",
    version="1",
    urls_namespace="api",
    docs_url="/docs",
    auth=api_auth,
    parser=ORJSONParser(),
    renderer=ORJSONRenderer(),
    description=(
        "Integration API for shops: customers, orders, products and behavioural events. "
        "Authenticate with `Authorization: Bearer <key>` or `X-API-Key: <key>` "
        "(create keys with `manage.py create_api_key` or in Settings → Integrations)."
    ),
)


def _loc(loc) -> str:
    parts = [str(p) for p in loc if p not in ("body", "payload")]
    return ".".join(parts) or "body"


@api.exception_handler(EcrmError)
def on_domain_error(request, exc: EcrmError):
    body = {"code": exc.code, "message": exc.message}
    if exc.fields:
        body["fields"] = exc.fields
    return api.create_response(request, body, status=exc.status)


@api.exception_handler(ValidationError)
def on_validation_error(request, exc: ValidationError):
    fields = {_loc(e.get("loc", ())): e.get("msg", "invalid") for e in exc.errors}
    return api.create_response(
        request,
        {"code": "validation_failed", "message": "The request does not match the schema.", "fields": fields},
        status=422,
    )


@api.exception_handler(AuthenticationError)
def on_auth_error(request, exc):
    return api.create_response(
        request, {"code": "unauthorized", "message": "A valid, unrevoked API key is required."}, status=401
    )


@api.exception_handler(orjson.JSONDecodeError)
def on_bad_json(request, exc):
    return api.create_response(
        request, {"code": "malformed_json", "message": f"Malformed JSON: {exc}"}, status=400
    )


def _register_routers() -> None:
    from ecrm.analytics.api import router as analytics_router
    from ecrm.commerce.api import router as commerce_router
    from ecrm.conversations.api import router as conversations_router
    from ecrm.core.api import router as core_router
    from ecrm.customers.api import router as customers_router
    from ecrm.ingest.api import router as ingest_router
    from ecrm.knowledge.api import router as knowledge_router
    from ecrm.portal.api import router as portal_router
    from ecrm.routing.api import router as routing_router
    from ecrm.service.api import router as service_router
    from ecrm.webhooks.api import router as webhooks_router
    from ecrm.workflows.api import router as workflows_router

    api.add_router("/v1/", ingest_router)
    api.add_router("/v1/customers", customers_router)
    api.add_router("/v1/", commerce_router)
    api.add_router("/v1/", core_router)
    api.add_router("/v1/analytics", analytics_router)
    api.add_router("/v1/conversations", conversations_router)
    api.add_router("/v1/service", service_router)
    api.add_router("/v1/kb", knowledge_router)
    api.add_router("/v1/portal", portal_router)
    api.add_router("/v1/routing", routing_router)
    api.add_router("/v1/webhooks", webhooks_router)
    api.add_router("/v1/workflows", workflows_router)


_register_routers()
