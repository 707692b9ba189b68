"""Console pages of the knowledge base (mounted at /kb/)."""

from django.urls import path

from . import views

app_name = "knowledge"

urlpatterns = [
    path("", views.article_list, name="list"),
    path("new/", views.article_create, name="create"),
    path("preview/", views.preview, name="preview"),
    path("categories/", views.category_list, name="categories"),
    path("<int:article_id>/", views.article_detail, name="detail"),
    path("<int:article_id>/settings/", views.article_settings, name="settings"),
    path("<int:article_id>/<str:language>/edit/", views.article_edit, name="edit"),
    path("<int:article_id>/<str:language>/publish/", views.publish, name="publish"),
    path("<int:article_id>/<str:language>/history/", views.history, name="history"),
]
