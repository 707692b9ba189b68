from django.urls import path

from . import views

app_name = "customers"
urlpatterns = [
    path("", views.customer_list, name="list"),
    path("<int:customer_id>/", views.customer_detail, name="detail"),
    path("<int:customer_id>/timeline/", views.timeline, name="timeline"),
    path("<int:customer_id>/notes/", views.add_note, name="add_note"),
    path("<int:customer_id>/tags/", views.add_tag, name="add_tag"),
    path("<int:customer_id>/tags/remove/", views.remove_tag, name="remove_tag"),
    path("<int:customer_id>/consent/", views.set_consent, name="set_consent"),
    path("<int:customer_id>/attributes/", views.update_attributes, name="update_attributes"),
    path("<int:customer_id>/merge/", views.merge_with, name="merge_with"),
    path("duplicates/", views.duplicates, name="duplicates"),
    path("duplicates/<int:candidate_id>/", views.review_candidate, name="review_candidate"),
    path("duplicates/<int:candidate_id>/dismiss/", views.dismiss_candidate, name="dismiss_candidate"),
    path("merge/", views.do_merge, name="merge"),
    path("merges/<int:merge_id>/unmerge/", views.unmerge, name="unmerge"),
    path("attributes/", views.attributes, name="attributes"),
    path("attributes/<int:definition_id>/delete/", views.delete_attribute, name="delete_attribute"),
]
