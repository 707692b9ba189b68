"""The plain values the engine works on: weights, waiting items, agents and the decisions it returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

POLICIES: tuple[str, ...] = ("optimal", "round_robin", "least_loaded")


@dataclass(frozen=True)
class Weights:
    """How much each factor counts in an (item, agent) score; set by an admin, all >= 0.

    Every factor is first scaled to 0..1 (see `scoring.py`), so a weight says directly how many
    "points" a perfect match on that factor is worth next to the others.
    """

    skill: float = 3.0
    load: float = 1.0
    urgency: float = 2.0
    value: float = 1.0
    affinity: float = 1.0
    wait: float = 1.0
    priority: float = 1.0

    def __post_init__(self) -> None:
        for name, value in self.as_dict().items():
            if not value >= 0:  # also refuses NaN
                raise ValueError(f"weight {name!r} must be >= 0, got {value!r}")

    def as_dict(self) -> dict[str, float]:
        return {
            "skill": self.skill,
            "load": self.load,
            "urgency": self.urgency,
            "value": self.value,
            "affinity": self.affinity,
            "wait": self.wait,
            "priority": self.priority,
        }


@dataclass(frozen=True)
class ItemSpec:
    """A piece of waiting work (conversation, ticket, callback) as the engine sees it."""

    id: int
    channel: str
    # required skill -> minimum level 1..5: a hard constraint (e.g. {"lang:zh": 1, "cat:returns": 3})
    skills: dict[str, int] = field(default_factory=dict)
    # nice-to-have skill -> level: scored, never required
    preferred: dict[str, int] = field(default_factory=dict)
    priority: int = 0  # queue priority, higher first
    sla_seconds_left: float | None = None  # time to SLA breach; negative = already breached
    value: float = 0.0  # customer value 0..1 (CLV tier; VIP = 1)
    waited_seconds: float = 0.0
    last_agent_id: int | None = None  # the agent who last helped this customer (affinity)


@dataclass(frozen=True)
class AgentSpec:
    """An agent who may take work now: skills with levels, capacity and current load per channel."""

    id: int
    skills: dict[str, int]  # skill -> level 1..5
    capacity: dict[str, int]  # channel -> max concurrent items
    load: dict[str, int]  # channel -> items in hand now
    name: str = ""

    def free(self, channel: str) -> int:
        return max(0, self.capacity.get(channel, 0) - self.load.get(channel, 0))


@dataclass(frozen=True)
class Decision:
    """One assignment with its explanation: the weighted factors and short human-readable reasons.

    `reasons` (e.g. ["speaks zh", "returns skill 4/5", "1 of 3 chats", "VIP customer",
    "6 min to SLA breach"]) are written the first time someone reads them: a batch of a thousand
    assignments costs a few ms less, and every applied decision is read when it is stored."""

    item_id: int
    agent_id: int
    score: float
    factors: dict[
        str, float
    ]  # weighted contribution per factor (skill, load, urgency, value, affinity, wait, priority)
    policy: str
    # the reasons, or a function that writes them (replaced by its result on first read)
    reasons_source: list[str] | Callable[[], list[str]] = field(
        default_factory=list, repr=False, compare=False
    )

    @property
    def reasons(self) -> list[str]:
        source = self.reasons_source
        if callable(source):
            source = source()
            object.__setattr__(self, "reasons_source", source)
        return source

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Decision):
            return NotImplemented
        return (self.item_id, self.agent_id, self.score, self.factors, self.policy, self.reasons) == (
            other.item_id, other.agent_id, other.score, other.factors, other.policy, other.reasons,
        )  # fmt: skip

    __hash__ = None  # type: ignore[assignment]  # mutable parts (factors): not hashable, as before
