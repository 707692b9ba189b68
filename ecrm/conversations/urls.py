from django.urls import include, path

from . import downloads, views

app_name = "conversations"

urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("<int:pk>/", views.detail, name="detail"),
    path("forms/", include("ecrm.conversations.channels.webform.urls")),
    path("callbacks/", include("ecrm.conversations.channels.callback.urls")),
    path("export.csv", views.export_csv, name="export"),
    path("row/<int:pk>/", views.inbox_row, name="row"),
    path("<int:pk>/messages/", views.messages_fragment, name="messages"),
    path("<int:pk>/reply/", views.reply, name="reply"),
    path("<int:pk>/note/", views.note, name="note"),
    path("<int:pk>/status/", views.set_status, name="status"),
    path("<int:pk>/assign/", views.assign, name="assign"),
    path("<int:pk>/canned/<int:reply_id>/", views.canned_render, name="canned_render"),
    path("<int:pk>/articles/", views.kb_articles, name="kb_articles"),
    path("canned/", views.canned_list, name="canned_list"),
    path("canned/new/", views.canned_edit, name="canned_new"),
    path("canned/<int:reply_id>/", views.canned_edit, name="canned_edit"),
    path("canned/<int:reply_id>/delete/", views.canned_delete, name="canned_delete"),
    path("settings/", views.inbox_settings, name="inbox_settings"),
    path("settings/new/", views.inbox_settings_edit, name="inbox_settings_new"),
    path("settings/<int:inbox_id>/", views.inbox_settings_edit, name="inbox_settings_edit"),
    path("attachments/<int:pk>/", downloads.attachment, name="attachment"),
]
