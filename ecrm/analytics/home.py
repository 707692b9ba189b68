"""Home page figure: customers at high churn risk in the current run (for analytics users)."""

from __future__ import annotations

from django.urls import reverse_lazy
from django.utils.translation import gettext_lazy as _

from ecrm.core.home import cached_figure
from ecrm.core.selectors import register_home_figure

from .models import ChurnBand, CustomerScore


def _high_churn() -> str:
    n = CustomerScore.objects.filter(run__is_current=True, churn_band=ChurnBand.HIGH).count()
    return f"{n:,}"


def register() -> None:
    register_home_figure(
        cached_figure(
            "analytics_high_churn",
            "analytics.view",
            _("Customers at high churn risk"),
            reverse_lazy("analytics:churn"),
            _high_churn,
        )
    )
