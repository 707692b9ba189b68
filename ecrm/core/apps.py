from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "ecrm.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from . import tasks  # noqa: F401  registers the dead-letter hook with the task queue
