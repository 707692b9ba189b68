from django.apps import AppConfig


class ServiceConfig(AppConfig):
    name = "ecrm.service"
    label = "service"
    verbose_name = "Service desk"
