"""REST endpoints of the portal app (mounted under /api/v1/ in config/api.py)."""

from ninja import Router

router = Router(tags=["portal"])
