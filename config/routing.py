"""WebSocket routes. Each app that pushes live updates adds its consumers here."""

from django.urls import path

from ecrm.conversations.consumers import InboxConsumer
from ecrm.core.consumers import LiveUpdatesConsumer

websocket_urlpatterns = [
    path("ws/live/", LiveUpdatesConsumer.as_asgi()),
    path("ws/inbox/", InboxConsumer.as_asgi()),
]
