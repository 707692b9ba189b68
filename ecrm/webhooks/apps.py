from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "ecrm.webhooks"
    label = "webhooks"
    verbose_name = "Outgoing webhooks"
