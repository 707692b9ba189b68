"""Public pages (no console login): what the shop embeds, under /connect/."""

from django.urls import path

from .channels.chat import views as chat

app_name = "connect"

urlpatterns: list = [
    path("chat/widget.js", chat.widget_js, name="chat_widget_js"),
    path("chat/widget.css", chat.widget_css, name="chat_widget_css"),
    path("chat/config", chat.chat_config, name="chat_config"),
    path("chat/session", chat.start_session, name="chat_session"),
    path("chat/offline", chat.offline_message, name="chat_offline"),
    path("chat/demo-shop/", chat.demo_shop, name="chat_demo_shop"),
]

# --- web forms and callback requests (channels/webform, channels/callback) ---
from .channels.callback import views as callback_views  # noqa: E402
from .channels.webform import views as webform_views  # noqa: E402

urlpatterns += [
    path("f/<slug:slug>/", webform_views.public_form, name="webform"),
    path("callback/<int:inbox_id>/", callback_views.public_request, name="callback"),
]
