"""Console routes of the web-form builder (included by conversations/urls.py under /inbox/forms/)."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.form_list, name="webforms"),
    path("new/", views.form_edit, name="webform_new"),
    path("<int:pk>/", views.form_edit, name="webform_edit"),
]
