from django.apps import AppConfig


class ServiceConfig(AppConfig):
    name = "ecrm.service"
    label = "service"
    verbose_name = "Service desk"

    def ready(self) -> None:
        from . import hooks, tasks  # noqa: F401  (tasks: registers the periodic SLA check)

        hooks.register_all()
