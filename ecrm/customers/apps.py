from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "ecrm.customers"
    label = "customers"
    verbose_name = "Customers"

    def ready(self) -> None:
        from . import home

        home.register()
