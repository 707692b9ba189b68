"""Customer figures on the home page."""

from __future__ import annotations

import datetime as dt

from django.urls import reverse_lazy
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ecrm.core.home import cached_figure
from ecrm.core.selectors import register_home_figure

from .models import CandidateStatus, Customer, CustomerStatus, DuplicateCandidate


def _active_customers() -> str:
    return f"{Customer.objects.filter(status=CustomerStatus.ACTIVE).count():,}"


def _new_customers_30d() -> str:
    since = timezone.now() - dt.timedelta(days=30)
    return f"{Customer.objects.filter(status=CustomerStatus.ACTIVE, created_at__gte=since).count():,}"


def _open_duplicates() -> str:
    return f"{DuplicateCandidate.objects.filter(status=CandidateStatus.OPEN).count():,}"


def register() -> None:
    register_home_figure(
        cached_figure(
            "customers", "customers.view", _("Customers"), reverse_lazy("customers:list"), _active_customers
        )
    )
    register_home_figure(
        cached_figure(
            "customers_new",
            "customers.view",
            _("New customers (30 days)"),
            reverse_lazy("customers:list"),
            _new_customers_30d,
        )
    )
    register_home_figure(
        cached_figure(
            "duplicates",
            "customers.merge",
            _("Possible duplicates to review"),
            reverse_lazy("customers:duplicates"),
            _open_duplicates,
        )
    )
