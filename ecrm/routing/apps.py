from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "ecrm.routing"
    label = "routing"
    verbose_name = "Routing"

    def ready(self) -> None:
        from . import handlers, panels, tasks  # noqa: F401  (tasks: registers the periodic tick)

        handlers.subscribe_all()
        panels.register_all()
