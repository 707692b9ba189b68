"""API authentication: integration keys (Bearer or X-API-Key) and console sessions."""

from __future__ import annotations

from django.http import HttpRequest
from ninja.security import APIKeyHeader, HttpBearer, django_auth

from .exceptions import PermissionDenied
from .models import ApiKey, User
from .services import authenticate_api_key


class BearerKey(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        return authenticate_api_key(token)


class HeaderKey(APIKeyHeader):
    param_name = "X-API-Key"

    def authenticate(self, request: HttpRequest, key: str | None) -> ApiKey | None:
        return authenticate_api_key(key or "")


# Order matters: keys first (integrations), then a signed-in console user (the console's own fetches).
api_auth = [BearerKey(), HeaderKey(), django_auth]


def require_write(request: HttpRequest) -> None:
    """403 for a read-only (or tracking-only) key, or a console user without edit rights."""
    principal = request.auth
    if isinstance(principal, ApiKey):
        if not principal.allows_write():
            raise PermissionDenied("This API key is read-only.", code="read_only_key")
        return
    if isinstance(principal, User):
        from .permissions import check_perm

        check_perm(principal, "customers.edit")
        return
    raise PermissionDenied("Not allowed.")


def require_track(request: HttpRequest) -> None:
    principal = request.auth
    if isinstance(principal, ApiKey) and principal.allows_track():
        return
    require_write(request)


def actor_of(request: HttpRequest) -> ApiKey | User | None:
    return request.auth if isinstance(request.auth, ApiKey | User) else None
