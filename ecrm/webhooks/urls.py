"""Console pages of webhooks (mounted at /webhooks/)."""

from django.urls import path

from . import views

app_name = "webhooks"

urlpatterns = [
    path("", views.endpoint_list, name="list"),
    path("new/", views.endpoint_new, name="new"),
    path("<int:endpoint_id>/", views.endpoint_detail, name="detail"),
    path("<int:endpoint_id>/<str:action>/", views.endpoint_action, name="action"),
    path("deliveries/", views.delivery_list, name="deliveries"),
    path("deliveries/<int:delivery_id>/", views.delivery_detail, name="delivery"),
    path("deliveries/<int:delivery_id>/replay/", views.delivery_replay, name="replay"),
    path("allowlist/add/", views.allow_add, name="allow_add"),
    path("allowlist/<int:entry_id>/remove/", views.allow_remove, name="allow_remove"),
]
