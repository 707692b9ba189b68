"""REST API of routing (mounted at /api/v1/routing)."""

from ninja import Router

router = Router(tags=["routing"])
