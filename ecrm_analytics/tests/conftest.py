"""Shared fixtures for the analytics library tests: the CDNOW cohort sample, summarised
the way Fader, Hardie & Lee (2005) did (weeks 1-39 as calibration, time in weeks,
same-day purchases merged, spend averaged over repeat purchases)."""

from __future__ import annotations

import pandas as pd
import pytest

from ecrm_analytics.datasets import CDNOW_CALIBRATION_END, load_cdnow_sample_transactions
from ecrm_analytics.rfm import rfm_summary


@pytest.fixture(scope="session")
def cdnow_transactions() -> pd.DataFrame:
    return load_cdnow_sample_transactions()


@pytest.fixture(scope="session")
def cdnow_summary(cdnow_transactions) -> pd.DataFrame:
    """Our own summary of the raw CDNOW lines at the end of week 39 (1997-09-30)."""
    return rfm_summary(
        cdnow_transactions, "customer_id", "date", "amount",
        observation_end=CDNOW_CALIBRATION_END, time_unit="W",
    )


@pytest.fixture(scope="session")
def cdnow_bgnbd(cdnow_summary):
    from ecrm_analytics.clv import BetaGeoModel

    return BetaGeoModel(time_unit="W").fit(cdnow_summary)


@pytest.fixture(scope="session")
def cdnow_gamma_gamma(cdnow_summary):
    from ecrm_analytics.clv import GammaGammaModel

    return GammaGammaModel().fit(cdnow_summary)


@pytest.fixture(scope="session")
def cdnow_paretonbd(cdnow_summary):
    from ecrm_analytics.clv import ParetoNBDModel

    return ParetoNBDModel(time_unit="W").fit(cdnow_summary)


def history(rows: list[tuple[float, float, float]], index=None) -> pd.DataFrame:
    """A small (frequency, recency, T) table."""
    return pd.DataFrame(rows, columns=["frequency", "recency", "T"], index=index)
