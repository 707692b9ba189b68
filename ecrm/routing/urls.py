"""Console pages of routing (mounted at /routing/)."""

from django.urls import path

from . import views

app_name = "routing"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("agents/", views.agents, name="agents"),
    path("agents/<int:user_id>/", views.agent_edit, name="agent_edit"),
    path("queues/", views.queues, name="queues"),
    path("queues/<int:queue_id>/", views.queue_edit, name="queue_edit"),
    path("settings/", views.settings_page, name="settings"),
    path("presence/", views.presence, name="presence"),
]
