from django.urls import path

from . import views

app_name = "core"
urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("settings/integrations/", views.integrations, name="integrations"),
    path("settings/integrations/keys/<int:key_id>/revoke/", views.revoke_key, name="revoke_key"),
    path("settings/jobs/", views.failed_jobs, name="failed_jobs"),
    path("settings/jobs/<int:job_id>/retry/", views.retry_job, name="retry_job"),
    path("settings/audit/", views.audit_log, name="audit_log"),
    path("healthz", views.healthz, name="healthz"),
]
