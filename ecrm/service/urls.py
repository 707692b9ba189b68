from django.urls import path

from . import views
from .flows import views as flow_views

app_name = "service"

urlpatterns = [
    path("", views.ticket_list, name="list"),
    path("export.csv", views.ticket_export, name="export"),
    path("new/", views.ticket_new, name="new"),
    path(
        "from-conversation/<int:conversation_id>/", views.ticket_from_conversation, name="from_conversation"
    ),
    path("link-conversation/<int:conversation_id>/", views.link_conversation, name="link_conversation"),
    path("<int:ticket_id>/", views.ticket_detail, name="detail"),
    path("<int:ticket_id>/watch/", views.ticket_watch, name="watch"),
    path("<int:ticket_id>/update/", views.ticket_update, name="update"),
    path("<int:ticket_id>/comment/", views.ticket_comment, name="comment"),
    path("<int:ticket_id>/merge/", views.ticket_merge, name="merge"),
    path("<int:ticket_id>/return/", views.ticket_return, name="request_return"),
    path("returns/", views.return_list, name="returns"),
    path("returns/<int:request_id>/status/", views.return_status, name="return_status"),
    path("<int:ticket_id>/stage/", flow_views.ticket_stage, name="ticket_stage"),
    path("sla/", views.sla_settings_page, name="sla"),
    path("flows/", flow_views.flow_list, name="flows"),
    path("flows/new/", flow_views.flow_edit, name="flow_new"),
    path("flows/<int:flow_id>/", flow_views.flow_edit, name="flow_edit"),
    path("flows/export.yaml", flow_views.flows_export, name="flows_export"),
    path("flows/import/", flow_views.flows_import, name="flows_import"),
    path("reports/", views.report_page, name="reports"),
    path("surveys/nps/", views.nps_page, name="nps"),
    # public, no login: the survey form behind a signed link
    path("survey/<str:token>/", views.survey, name="survey"),
]
