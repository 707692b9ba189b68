"""ASGI entry point: HTTP (console and API) and WebSocket (live updates) in one process."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
django.setup(set_prefix=False)

from ecrm.core.asgi import PooledASGIHandler  # noqa: E402

# Django's handler, with requests on a fixed set of long-lived threads that keep their database
# connections (ecrm/core/asgi.py)
django_asgi_app = PooledASGIHandler(threads=int(os.environ.get("ECRM_HTTP_THREADS", "8")))

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import re_path  # noqa: E402

from config.routing import public_websocket_urlpatterns, websocket_urlpatterns  # noqa: E402

console_websocket = AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter([*public_websocket_urlpatterns, re_path(r"", console_websocket)]),
    }
)
