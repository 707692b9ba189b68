"""Customer lifetime value: BG/NBD and Pareto/NBD purchase models, Gamma-Gamma spend, CLV.

Typical use::

    summary = rfm_summary(tx, "customer_id", "ordered_at", "amount", time_unit="W")
    bg = BetaGeoModel(time_unit="W").fit(summary)
    gg = GammaGammaModel().fit(summary)
    clv = customer_lifetime_value(bg, gg, summary, months=12, discount_rate=0.01)
"""

from .base import CLVModel, ConvergenceError
from .bgnbd import BetaGeoModel
from .gamma_gamma import GammaGammaModel, customer_lifetime_value
from .paretonbd import ParetoNBDModel

__all__ = [
    "CLVModel",
    "ConvergenceError",
    "BetaGeoModel",
    "ParetoNBDModel",
    "GammaGammaModel",
    "customer_lifetime_value",
]
