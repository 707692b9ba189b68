"""REST endpoints of the conversations app (mounted under /api/v1/ in config/api.py)."""

from ninja import Router

router = Router(tags=["conversations"])

# Channel routers (each channel owns its inbound endpoints).
from .channels.email.api import router as email_router  # noqa: E402

router.add_router("", email_router)
