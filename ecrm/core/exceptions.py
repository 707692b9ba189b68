"""Domain exceptions. Services raise these; the API and views map them to HTTP in one place each."""

from __future__ import annotations


class EcrmError(Exception):
    """Base class: every domain error has a stable machine-readable code and an HTTP status."""

    code = "error"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, fields: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.fields = fields or {}


class NotFound(EcrmError):
    code = "not_found"
    status = 404


class PermissionDenied(EcrmError):
    code = "permission_denied"
    status = 403


class ValidationFailed(EcrmError):
    code = "validation_failed"
    status = 422


class Conflict(EcrmError):
    code = "conflict"
    status = 409
