from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "ecrm.analytics"
    label = "analytics"
    verbose_name = "Analytics"

    def ready(self) -> None:
        # Analytics plugs its scores into the customer pages (customers may not import analytics).
        from django.utils.translation import gettext_lazy as _

        from ecrm.customers.selectors import register_choice_filter, register_profile_panel

        from . import home, selectors, tasks  # noqa: F401 - tasks registers the nightly schedule with Huey
        from .models import ChurnBand, ClvBand

        register_profile_panel(selectors.customer_scores_panel)
        # Selects on the customer list (and query parameters of the list API).
        register_choice_filter(
            "rfm_segment",
            label=_("RFM segment"),
            choices=selectors.segment_choices,
            apply=selectors.filter_rfm_segment,
        )
        register_choice_filter(
            "churn_band",
            label=_("Churn risk"),
            choices=lambda: ChurnBand.choices,
            apply=selectors.filter_churn_band,
        )
        register_choice_filter(
            "clv_band",
            label=_("Predicted value"),
            choices=lambda: ClvBand.choices,
            apply=selectors.filter_clv_band,
        )
        home.register()
