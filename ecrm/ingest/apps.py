from django.apps import AppConfig


class IngestConfig(AppConfig):
    name = "ecrm.ingest"
    label = "ingest"
    verbose_name = "Data integration"

    def ready(self) -> None:
        from ecrm.customers.timeline import register_timeline_source

        from .timeline import events_source

        register_timeline_source("ingest.events", events_source)
