from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "ecrm.webhooks"
    label = "webhooks"
    verbose_name = "Outgoing webhooks"

    def ready(self) -> None:
        from ecrm.core import events, http

        from . import selectors, services

        # every domain event except the scheduler's minute tick, which is not news to anyone outside
        prefixes = tuple(
            sorted({n.split(".")[0] + "." for n in events.EVENT_NAMES if n not in services.NOT_SENT})
        )
        events.subscribe(services.on_event, names=prefixes)
        http.register_allowlist_source(selectors.allowlist_values)
