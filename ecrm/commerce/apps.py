from django.apps import AppConfig


class CommerceConfig(AppConfig):
    name = "ecrm.commerce"
    label = "commerce"
    verbose_name = "Commerce"

    def ready(self) -> None:
        # Commerce plugs into the customer pages (customers may not import commerce).
        from ecrm.customers.selectors import (
            register_list_filter,
            register_profile_panel,
            register_profile_stat,
            register_search_resolver,
        )
        from ecrm.customers.timeline import register_timeline_source

        from . import home, selectors
        from .timeline import orders_source

        register_timeline_source("commerce.orders", orders_source)
        register_search_resolver(selectors.customers_with_order_number)
        register_list_filter("has_orders", selectors.filter_has_orders)
        register_profile_panel(selectors.customer_orders_panel)
        register_profile_stat("orders", selectors.order_counts)
        home.register()
