from django.apps import AppConfig


class ServiceConfig(AppConfig):
    name = "ecrm.service"
    label = "service"
    verbose_name = "Service desk"

    def ready(self) -> None:
        from . import hooks, tasks  # noqa: F401  (tasks: registers the periodic SLA check)
        from .flows import panel
        from .flows import tasks as flow_tasks  # noqa: F401  (the periodic stage SLA check)

        hooks.register_all()
        panel.register()
