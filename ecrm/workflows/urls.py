"""Console pages of workflows (mounted at /workflows/)."""

from django.urls import path

from . import views

app_name = "workflows"

urlpatterns = [
    path("", views.rule_list, name="rules"),
    path("new/", views.rule_new, name="rule_new"),
    path("<int:rule_id>/", views.rule_edit, name="rule_edit"),
    path("<int:rule_id>/move/", views.rule_move, name="rule_move"),
    path("<int:rule_id>/active/", views.rule_active, name="rule_active"),
    path("<int:rule_id>/delete/", views.rule_delete, name="rule_delete"),
    path("editor/condition/", views.condition_row, name="condition_row"),
    path("editor/group/", views.condition_group, name="condition_group"),
    path("editor/action/", views.action_row, name="action_row"),
    path("dry-run/", views.dry_run, name="dry_run"),
    path("runs/", views.run_list, name="runs"),
    path("tasks/", views.task_list, name="tasks"),
    path("tasks/<int:task_id>/done/", views.task_done, name="task_done"),
    path("notifications/", views.notification_list, name="notifications"),
    path("export.yaml", views.export_yaml, name="export"),
    path("import/", views.import_yaml, name="import"),
]
