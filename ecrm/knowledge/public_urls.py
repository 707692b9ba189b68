"""Public pages (no console login): the help center."""

from django.urls import path

from . import public_views

app_name = "knowledge_public"

urlpatterns = [
    path("", public_views.index, name="index"),
    path("search/", public_views.search, name="search"),
    path("c/<slug:slug>/", public_views.category, name="category"),
    path("a/<slug:slug>/", public_views.article, name="article"),
]
