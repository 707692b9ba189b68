from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "ecrm.workflows"
    label = "workflows"
    verbose_name = "Workflows"

    def ready(self) -> None:
        from ecrm.core import events

        from . import engine, tasks  # noqa: F401  (tasks: registers the scheduler)

        # every event name except the scheduler's own tick (scheduled rules query their subjects)
        prefixes = tuple(sorted({n.split(".")[0] + "." for n in events.EVENT_NAMES if n != "schedule.tick"}))
        events.subscribe(engine.on_event, names=prefixes)
