"""Console pages of workflows (mounted at /workflows/)."""

from django.urls import path  # noqa: F401

app_name = "workflows"

urlpatterns: list = []
