"""The rule engine: which rules an event triggers, evaluating them, running their actions, and
loop protection.

Where rules run: the domain-event handler (after the triggering transaction commits) only checks,
from an in-process cache, whether any active rule listens to the event, and if so enqueues one
background job with the event (`tasks.run_rules`). The worker evaluates the rules in `position`
order against one lazily loaded context and runs the actions of those that match, each rule in
its own transaction under `events.caused_by(event)`, so what the actions change is emitted one
step deeper in the chain. A request therefore never waits for automation, and a crash between
commit and evaluation leaves the job in the queue. (Tests run jobs eagerly, so the rules run inside
the on-commit callback there.)

Loop protection: an event `MAX_CHAIN` automated steps deep is not acted on, and within one chain
the same rule never fires twice on the same subject; both refusals are logged as runs.

Non-matches are only counted (buffered in memory and added to the rule's counters in one UPDATE
per rule every few seconds); matches, errors and refusals get a `RuleRun` row.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from ecrm.core import events
from ecrm.core.events import Event

from .actions import ActionFailed, buffer_live, flush_live, run_action
from .conditions import Test, compile_tree
from .fields import Context

logger = logging.getLogger(__name__)

MAX_CHAIN = 5
CACHE_SECONDS = 2.0  # how stale the request-side "does any rule listen?" answer may be
FLUSH_SECONDS = 5.0
SCHEDULE = "schedule"


@dataclass
class CompiledRule:
    id: int
    name: str
    position: int
    triggers: tuple[str, ...]
    test: Test
    actions: list[dict]
    stop_processing: bool
    schedule_subject: str


class _Cache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.version: tuple | None = None
        self.checked_at = 0.0
        self.by_trigger: dict[str, list[CompiledRule]] = {}
        self.by_id: dict[int, CompiledRule] = {}


_cache = _Cache()


def _db_version() -> tuple:
    """What changes whenever a rule is added, changed or deleted. Plain SQL: it runs once per event in
    the worker, and compiling the equivalent ORM aggregate costs more than running it."""
    from .models import Rule

    table = connection.ops.quote_name(Rule._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*), MAX(updated_at), SUM(id) FROM {table}")  # noqa: S608 - no user input
        return tuple(cursor.fetchone())


def invalidate() -> None:
    """Forget the compiled rules (services call it after every change to a rule)."""
    with _cache.lock:
        _cache.version = None
        _cache.checked_at = 0.0


def _reload(version: tuple) -> None:
    from .models import Rule

    by_trigger: dict[str, list[CompiledRule]] = {}
    by_id: dict[int, CompiledRule] = {}
    for rule in Rule.objects.filter(is_active=True).order_by("position", "id"):
        try:
            test = compile_tree(rule.conditions)
        except Exception:  # a rule saved by an older version that no longer compiles never matches
            logger.exception("workflow rule %s does not compile", rule.pk)
            continue
        compiled = CompiledRule(
            rule.pk, rule.name, rule.position, tuple(rule.triggers or ()), test, list(rule.actions or []),
            rule.stop_processing, rule.schedule_subject,
        )  # fmt: skip
        by_id[rule.pk] = compiled
        for trigger in compiled.triggers:
            by_trigger.setdefault(trigger, []).append(compiled)
    _cache.by_trigger, _cache.by_id, _cache.version = by_trigger, by_id, version


def rules_for(event_name: str, *, fresh: bool = True) -> list[CompiledRule]:
    """Active rules triggered by `event_name`, in order. `fresh=False` (the request-side check)
    trusts the cache for CACHE_SECONDS; the worker checks the table's version on every event."""
    with _cache.lock:
        now = time.monotonic()
        if _cache.version is None or fresh or now - _cache.checked_at > CACHE_SECONDS:
            version = _db_version()
            if version != _cache.version:
                _reload(version)
            _cache.checked_at = now
        return _cache.by_trigger.get(event_name, [])


def rule_by_id(rule_id: int) -> CompiledRule | None:
    rules_for("", fresh=True)
    return _cache.by_id.get(rule_id)


# --- counters ----------------------------------------------------------------------------------

_counts: dict[int, list[int]] = {}
_counts_lock = threading.Lock()
_last_flush = [time.monotonic()]


def _count_all(evaluated: list[int], matched: list[int]) -> None:
    with _counts_lock:
        for rule_id in evaluated:
            entry = _counts.get(rule_id)
            if entry is None:
                entry = _counts[rule_id] = [0, 0]
            entry[0] += 1
        for rule_id in matched:
            _counts[rule_id][1] += 1


def flush_counters(*, force: bool = True) -> None:
    """Add the buffered evaluation/match counts to the rules (one UPDATE per rule)."""
    from .models import Rule

    if not force and time.monotonic() - _last_flush[0] < FLUSH_SECONDS:
        return
    with _counts_lock:
        pending = {k: v for k, v in _counts.items() if v[0]}
        _counts.clear()
        _last_flush[0] = time.monotonic()
    for rule_id, (evaluated, matched) in pending.items():
        Rule.objects.filter(pk=rule_id).update(
            evaluated_count=F("evaluated_count") + evaluated, matched_count=F("matched_count") + matched
        )


def pending_counts(rule_id: int) -> tuple[int, int]:
    with _counts_lock:
        evaluated, matched = _counts.get(rule_id, (0, 0))
    return evaluated, matched


# --- lineage: which rules already fired on which subject in this chain ---------------------------

Fired = frozenset[tuple[int, str, int | None]]
_lineage: contextvars.ContextVar[tuple[str, Fired] | None] = contextvars.ContextVar(
    "wf_lineage", default=None
)
# Fallback when the on-commit callback runs after our context has ended (an outer transaction, as in
# tests): what fired, by the (subject, chain) of the events it caused. Small and short-lived.
_recent: dict[tuple[str, int | None, int], tuple[float, tuple[str, Fired]]] = {}
RECENT_SECONDS = 120.0


@contextlib.contextmanager
def _acting(root: str, fired: Fired, event: Event) -> Iterator[None]:
    token = _lineage.set((root, fired))
    now = time.monotonic()
    _recent[(event.subject_type, event.subject_id, event.chain + 1)] = (now, (root, fired))
    if len(_recent) > 5000:
        for key, (at, _) in list(_recent.items()):
            if now - at > RECENT_SECONDS:
                _recent.pop(key, None)
    try:
        yield
    finally:
        _lineage.reset(token)


def lineage_for(event: Event) -> tuple[str, list[list]] | None:
    """The chain an event belongs to (its root event id and the rules fired so far), if it was caused by a rule."""
    if event.chain == 0:
        return None
    current = _lineage.get()
    if current is None:
        hit = _recent.get((event.subject_type, event.subject_id, event.chain))
        if hit is None or time.monotonic() - hit[0] > RECENT_SECONDS:
            return None
        current = hit[1]
    root, fired = current
    return root, [list(f) for f in sorted(fired, key=repr)]


# --- running -------------------------------------------------------------------------------------


def on_event(event: Event) -> None:
    """Domain event handler (after commit): hand the event to the worker if any rule listens."""
    if not rules_for(event.name, fresh=False):
        return
    from .tasks import run_rules

    run_rules(event.as_dict(), lineage_for(event))


def event_from_dict(data: dict[str, Any]) -> Event:
    from django.utils.dateparse import parse_datetime

    return Event(
        name=data["name"],
        subject_type=data.get("subject_type") or "",
        subject_id=data.get("subject_id"),
        data=data.get("data") or {},
        actor_id=data.get("actor_id"),
        chain=int(data.get("chain") or 0),
        id=data.get("id") or "",
        occurred_at=parse_datetime(data["occurred_at"]) if data.get("occurred_at") else timezone.now(),
    )


def process_event(event: Event, lineage: tuple[str, list] | None = None, *, rules: list[CompiledRule] | None = None,
                  instance: Any = None) -> list[dict]:  # fmt: skip
    """Evaluate the rules for `event` and run the actions of those that match. Returns one dict per
    rule that matched (what was logged)."""
    rules = rules_for(event.name) if rules is None else rules
    if not rules:
        return []
    ctx = Context(event, instance=instance)
    token = buffer_live()
    try:
        return _evaluate(rules, event, ctx, lineage)
    finally:
        flush_live(token)


def _evaluate(rules: list[CompiledRule], event: Event, ctx: Context, lineage) -> list[dict]:
    root, fired_list = lineage if lineage else (event.id, [])
    fired: Fired = frozenset((int(r), str(t), s if s is None else int(s)) for r, t, s in fired_list)
    outcomes: list[dict] = []
    evaluated: list[int] = []
    matched_ids: list[int] = []
    for rule in rules:
        started = time.perf_counter()
        evaluated.append(rule.id)
        try:
            matched = rule.test(ctx)
        except Exception as exc:  # a bad value in a record never stops the other rules
            outcomes.append(_log(rule, event, "failed", [], f"condition error: {exc}", started))
            continue
        if not matched:
            continue
        matched_ids.append(rule.id)
        key = (rule.id, event.subject_type, event.subject_id)
        if event.chain >= MAX_CHAIN:
            outcomes.append(_log(rule, event, "refused", [],
                                 f"loop protection: {event.chain} automated steps deep (limit {MAX_CHAIN})", started))  # fmt: skip
            continue
        if key in fired:
            outcomes.append(_log(rule, event, "refused", [],
                                 "loop protection: this rule already ran on this record in this chain", started))  # fmt: skip
            continue
        outcome = _run(rule, event, ctx, root, fired | {key}, started)
        outcomes.append(outcome)
        fired = fired | {key}
        if rule.stop_processing:
            break
    _count_all(evaluated, matched_ids)
    flush_counters(force=False)
    return outcomes


def _run(rule: CompiledRule, event: Event, ctx: Context, root: str, fired: Fired, started: float) -> dict:
    results: list[dict] = []
    failed = False
    with _acting(root, fired, event), events.caused_by(event):
        try:
            with transaction.atomic():
                for action in rule.actions:
                    try:
                        with transaction.atomic():  # a failing action is undone alone
                            result = run_action(action, ctx, rule)
                        ctx.refresh()
                        results.append({"type": action["type"], "ok": True, "result": result})
                    except (ActionFailed, Exception) as exc:  # noqa: B014 - logged on the run, not raised
                        failed = True
                        if not isinstance(exc, ActionFailed):
                            logger.exception(
                                "workflow action %s of rule %s failed", action.get("type"), rule.id
                            )
                        results.append({"type": action.get("type"), "ok": False, "result": str(exc)[:500]})
                return _log(rule, event, "failed" if failed else "done", results,
                            "an action failed" if failed else "", started)  # fmt: skip
        except Exception as exc:  # the rule's transaction itself failed (database error)
            logger.exception("workflow rule %s failed", rule.id)
            if connection.needs_rollback:
                return {"rule": rule.id, "status": "failed", "error": str(exc)}
            return _log(rule, event, "failed", results, str(exc)[:500], started)


def _log(
    rule: CompiledRule, event: Event, status: str, actions: list[dict], error: str, started: float
) -> dict:
    from .models import RuleRun

    run = RuleRun.objects.create(
        rule_id=rule.id,
        rule_name=rule.name,
        event_name=event.name,
        event_id=event.id[:32],
        subject_type=event.subject_type,
        subject_id=event.subject_id,
        chain=min(event.chain, 32767),
        status=status,
        actions=actions,
        error=error,
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
        at=timezone.now(),
    )
    return {"rule": rule.id, "run": run.pk, "status": status, "actions": actions, "error": error}
