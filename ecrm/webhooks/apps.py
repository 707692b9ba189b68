from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "ecrm.webhooks"
    label = "webhooks"
    verbose_name = "Outgoing webhooks"

    def ready(self) -> None:
        from ecrm.core import events, http

        from . import selectors, services

        events.subscribe(services.on_event, names=("",))
        http.register_allowlist_source(selectors.allowlist_values)
