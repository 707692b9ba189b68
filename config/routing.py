"""WebSocket routes. Each app that pushes live updates adds its consumers here."""

from django.urls import path

from ecrm.conversations.channels.chat.consumers import AgentChatConsumer, VisitorChatConsumer
from ecrm.conversations.consumers import InboxConsumer
from ecrm.core.consumers import LiveUpdatesConsumer

websocket_urlpatterns = [
    path("ws/live/", LiveUpdatesConsumer.as_asgi()),
    path("ws/inbox/", InboxConsumer.as_asgi()),
    path("ws/chat/agents/", AgentChatConsumer.as_asgi()),
]

# Public sockets, opened from other sites (the chat widget on the shop): not behind the console's
# allowed-hosts origin check or session auth; each consumer checks the origin and a signed token itself.
public_websocket_urlpatterns = [
    path("ws/chat/", VisitorChatConsumer.as_asgi()),
]
