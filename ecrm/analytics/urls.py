from django.urls import path

from . import views

app_name = "analytics"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("rfm/", views.rfm, name="rfm"),
    path("clv/", views.clv, name="clv"),
    path("churn/", views.churn, name="churn"),
    path("clusters/", views.clusters, name="clusters"),
    path("cohorts/", views.cohorts, name="cohorts"),
    path("rules/", views.rules, name="rules"),
    path("pivot/", views.olap, name="olap"),
    path("runs/", views.runs, name="runs"),
    path("runs/new/", views.run_request, name="run_request"),
    path("runs/<int:run_id>/", views.run_detail, name="run_detail"),
    path("runs/<int:run_id>/progress/", views.run_progress, name="run_progress"),
    path("export/<slug:name>.csv", views.export, name="export"),
]
