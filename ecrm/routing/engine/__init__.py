"""The routing engine: scoring, the batch assignment solve and the discrete-event simulator.

Pure numpy/scipy, no Django (an import-linter contract keeps it so): the Django app feeds it plain
arrays and dataclasses, and a data scientist can run the simulator on its own.

    from ecrm.routing.engine import Weights, ItemSpec, AgentSpec, Decision, solve, score, POLICIES
"""

from .policies import queue_order, score, solve
from .scoring import is_feasible
from .types import POLICIES, AgentSpec, Decision, ItemSpec, Weights

__all__ = [
    "POLICIES",
    "AgentSpec",
    "Decision",
    "ItemSpec",
    "Weights",
    "is_feasible",
    "queue_order",
    "score",
    "solve",
]
