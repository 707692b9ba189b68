from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "ecrm.routing"
    label = "routing"
    verbose_name = "Routing"
