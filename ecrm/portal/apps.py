from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "ecrm.portal"
    label = "portal"
    verbose_name = "Customer portal"
