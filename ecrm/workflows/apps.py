from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "ecrm.workflows"
    label = "workflows"
    verbose_name = "Workflows"
