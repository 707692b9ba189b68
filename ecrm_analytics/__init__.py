"""eCRM's analytics library: pure functions and models over DataFrames, with no Django imports.

* :mod:`ecrm_analytics.rfm` - RFM summaries, calibration/holdout splits, scores and segments.
* :mod:`ecrm_analytics.clv` - BG/NBD, Pareto/NBD and Gamma-Gamma models, discounted CLV.
* :mod:`ecrm_analytics.datasets` - the CDNOW sample (from the ``lifetimes`` package) and simulators.

Every entry point validates its input and raises :class:`AnalyticsInputError` (a
``ValueError``) with a message that says what is wrong with the data.
"""

from ._validation import AnalyticsInputError

__all__ = ["AnalyticsInputError"]
