"""REST API of workflows (mounted at /api/v1/workflows)."""

from ninja import Router

router = Router(tags=["workflows"])
