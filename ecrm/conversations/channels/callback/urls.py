"""Console routes of the callback list (included by conversations/urls.py under /inbox/callbacks/)."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.callback_list, name="callbacks"),
    path("<int:pk>/outcome/", views.record_outcome, name="callback_outcome"),
]
