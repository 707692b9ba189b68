from django.urls import path

from . import views

app_name = "ingest"
urlpatterns = [
    path("imports/", views.imports, name="imports"),
    path("imports/<int:job_id>/", views.import_job, name="import_job"),
    path("imports/<int:job_id>/mapping/", views.import_mapping, name="import_mapping"),
    path("imports/<int:job_id>/preview/", views.import_preview, name="import_preview"),
    path("imports/<int:job_id>/run/", views.import_run, name="import_run"),
    path("imports/<int:job_id>/progress/", views.import_progress, name="import_progress"),
    path("imports/<int:job_id>/errors.csv", views.import_errors, name="import_errors"),
]
