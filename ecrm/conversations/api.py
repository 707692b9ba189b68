"""REST endpoints of the conversations app (mounted under /api/v1/ in config/api.py)."""

from ninja import Router

router = Router(tags=["conversations"])

# The agent inbox (list, detail, reply, note, assign, status): inbox_api.py.
from .inbox_api import router as inbox_router  # noqa: E402

router.add_router("", inbox_router)

# Channel routers (each channel owns its inbound endpoints).
from .channels.email.api import router as email_router  # noqa: E402

router.add_router("", email_router)


# --- callback, phone and social webhooks (channels/<kind>/api.py) ---
from .channels.callback.api import router as callback_router  # noqa: E402
from .channels.phone.api import router as phone_router  # noqa: E402
from .channels.social.api import router as social_router  # noqa: E402
from .channels.webform.api import router as webform_router  # noqa: E402

router.add_router("/callback", callback_router)
router.add_router("/phone", phone_router)
router.add_router("/social", social_router)
router.add_router("/webform", webform_router)
