"""Writes for behavioural data: events (one or a batch of up to 1,000) and identify calls.

The batch path is the hot path of the whole product (target: 20,000 events/s through HTTP on two
cores), so it works on the batch as a whole: items are validated one by one (a bad item is reported and
the rest stored), identities of every event are resolved in one set-based query, and the events go in
with one multi-row `INSERT … ON CONFLICT (event_id) DO NOTHING RETURNING event_id`. Events are data,
not edits: they get no audit rows; identify calls and the customers they create or change do.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import Q
from django.utils import timezone
from pydantic import ValidationError as PydanticValidationError

from ecrm.core.audit import record_audit
from ecrm.core.exceptions import EcrmError, ValidationFailed
from ecrm.core.models import ApiKey, User
from ecrm.customers.models import Customer, CustomerStatus, Identity, IdentityKind
from ecrm.customers.normalize import InvalidIdentifier, normalize_email, normalize_identity, normalize_phone
from ecrm.customers.services import do_touch_seen, do_upsert_customer

from .models import Event
from .schemas import EVENT_ADAPTER, IDENTIFY_ADAPTER, EventIn, IdentifyIn, error_fields, item_rule_errors

Actor = User | ApiKey | None

_EMAIL, _PHONE, _EXTERNAL, _ANONYMOUS = "email", "phone", "external", "anonymous"
_MERGED = CustomerStatus.MERGED.value
# The API field each identity kind comes from, to name it in errors.
_FIELD_OF_KIND = {"external": "user_id", "email": "email", "phone": "phone", "anonymous": "anonymous_id"}
_EVENT_COLUMNS = (
    "event_id",
    "customer_id",
    "anonymous_id",
    "type",
    "name",
    "properties",
    "context",
    "occurred_at",
    "received_at",
    "source",
)


@dataclass(slots=True)
class ItemResult:
    """What happened to one item of a batch."""

    index: int
    status: str  # ok | duplicate | error
    type: str | None = None
    event_id: str | None = None
    customer_id: int | None = None
    errors: dict[str, str] | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "status": self.status, "type": self.type}
        if self.event_id is not None:
            out["event_id"] = self.event_id
        if self.customer_id is not None:
            out["customer_id"] = self.customer_id
        if self.errors:
            out["errors"] = self.errors
        return out


@dataclass
class BatchOutcome:
    results: list[ItemResult]

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    def as_dict(self) -> dict[str, Any]:
        return {
            "received": len(self.results),
            "accepted": self.count("ok"),
            "duplicates": self.count("duplicate"),
            "failed": self.count("error"),
            "results": [r.as_dict() for r in self.results],
        }


@dataclass
class IdentifyOutcome:
    customer: Customer
    created: bool
    events_moved: int
    attached: list[tuple[str, str]] = field(default_factory=list)


class _IdentityCache:
    """Normalised identities of one batch; phone parsing is slow and the same visitor repeats.

    Kinds are compared as plain strings here: on the hot path, enum comparisons and
    `IdentityKind.values` (which rebuilds a list per call) cost more than the normalising itself."""

    def __init__(self) -> None:
        self._memo: dict[tuple[str, str], str] = {}

    def normalize(self, kind: str, raw: str) -> str:
        key = (kind, raw)
        value = self._memo.get(key)
        if value is None:
            if kind == _EMAIL:
                value = normalize_email(raw)
            elif kind == _PHONE:
                value = normalize_phone(raw)
            elif kind in (_EXTERNAL, _ANONYMOUS):
                value = raw.strip()
                if not value or len(value) > 254:
                    raise InvalidIdentifier(f"{kind} identity must be 1 to 254 characters")
            else:
                value = normalize_identity(kind, raw)
            self._memo[key] = value
        return value


def _identities_of(item: EventIn | IdentifyIn, cache: _IdentityCache) -> tuple[list[tuple[str, str]], dict]:
    """The item's normalised (kind, value) pairs, most decisive first, and errors by field."""
    pairs: list[tuple[str, str]] = []
    errors: dict[str, str] = {}
    for kind, raw in (
        (_EXTERNAL, item.user_id),
        (_EMAIL, item.email),
        (_PHONE, item.phone),
        (_ANONYMOUS, item.anonymous_id),
    ):
        if not raw:
            continue
        try:
            pairs.append((kind, cache.normalize(kind, raw)))
        except InvalidIdentifier as exc:
            errors[_FIELD_OF_KIND[kind]] = str(exc)
    return pairs, errors


def _validate_item(index: int, raw: Any, now: dt.datetime, cache: _IdentityCache, max_bytes: int):
    """(item, identities) or an error ItemResult."""
    if not isinstance(raw, dict):
        return ItemResult(index, "error", errors={"body": "each item must be a JSON object"})
    item_type = raw.get("type") if isinstance(raw.get("type"), str) else None
    size = len(orjson.dumps(raw))
    if size > max_bytes:
        return ItemResult(
            index,
            "error",
            item_type,
            errors={"body": f"item is {size} bytes; the limit is {max_bytes} bytes"},
        )
    adapter = IDENTIFY_ADAPTER if item_type == "identify" else EVENT_ADAPTER
    try:
        item = adapter.validate_python(raw)
    except PydanticValidationError as exc:
        event_id = raw.get("event_id") if isinstance(raw.get("event_id"), str) else None
        return ItemResult(index, "error", item_type, event_id, errors=error_fields(exc))
    errors = item_rule_errors(item, now)
    identities, id_errors = _identities_of(item, cache)
    errors.update(id_errors)
    if errors:
        return ItemResult(index, "error", item.type, item.event_id, errors=errors)
    return item, identities


def do_ingest_batch(
    *, items: Sequence[Any], actor: Actor, source: str = "api", overwrite: bool = True
) -> BatchOutcome:
    """Store the valid events of a batch once each and run its identify calls; report every item.

    Identify calls run first, so that events of the same batch from the same anonymous visitor land on
    the identified customer whatever their order in the batch (the outcome a sequential run gives,
    since identify moves the visitor's earlier events too).
    """
    with _warm_sqlite_connection():
        return _ingest_batch(items, actor=actor, source=source, overwrite=overwrite)


def _ingest_batch(items: Sequence[Any], *, actor: Actor, source: str, overwrite: bool) -> BatchOutcome:
    now = timezone.now()
    cache = _IdentityCache()
    max_bytes = settings.ECRM_MAX_EVENT_BYTES
    results: list[ItemResult | None] = [None] * len(items)
    events: list[tuple[int, EventIn, list[tuple[str, str]]]] = []
    identifies: list[tuple[int, IdentifyIn]] = []
    for index, raw in enumerate(items):
        checked = _validate_item(index, raw, now, cache, max_bytes)
        if isinstance(checked, ItemResult):
            results[index] = checked
            continue
        item, identities = checked
        if isinstance(item, IdentifyIn):
            identifies.append((index, item))
        else:
            events.append((index, item, identities))

    for index, item in identifies:
        try:
            outcome = do_identify(
                anonymous_id=item.anonymous_id,
                user_id=item.user_id,
                email=item.email,
                phone=item.phone,
                traits=item.traits,
                actor=actor,
                source=source,
                overwrite=overwrite,
                occurred_at=item.occurred_at,
            )
        except EcrmError as exc:
            results[index] = ItemResult(
                index, "error", "identify", item.event_id, errors=exc.fields or {"body": exc.message}
            )
        else:
            results[index] = ItemResult(index, "ok", "identify", item.event_id, outcome.customer.pk)

    if events:
        for result in _store_events(events, now=now, actor=actor, source=source):
            results[result.index] = result
    return BatchOutcome(results=[r for r in results if r is not None])


_idle_connections: list[Any] = []
_idle_lock = threading.Lock()
MAX_IDLE_CONNECTIONS = 4


@contextlib.contextmanager
def _warm_sqlite_connection() -> Iterator[None]:
    """On a SQLite file, run the batch on a connection kept open between requests.

    Under ASGI Django runs each request's sync code in a new thread with a new database connection,
    which starts with an empty page cache and has to read the schema again. For a 1,000-event batch
    that cold start cost about 35 ms of a 45 ms batch in-process (bench/ingest.py; the B-tree pages of
    the event indexes were read again every time). So the batch borrows one of a few idle connections
    of this process for the thread, and gives it back afterwards; a connection that saw an error is
    closed instead. PostgreSQL keeps its connections with CONN_MAX_AGE already, and inside an outer
    transaction (an import, a test) the batch stays on the caller's connection.
    """
    current = connections[DEFAULT_DB_ALIAS]
    if current.vendor != "sqlite" or current.is_in_memory_db() or current.in_atomic_block:
        yield
        return
    with _idle_lock:
        warm = _idle_connections.pop() if _idle_connections else None
    if warm is None:
        warm = connections.create_connection(DEFAULT_DB_ALIAS)
        warm.inc_thread_sharing()  # used by one thread at a time, but not always the same one
    connections[DEFAULT_DB_ALIAS] = warm
    healthy = False
    try:
        yield
        healthy = not warm.in_atomic_block and warm.get_autocommit() and not warm.errors_occurred
    finally:
        connections[DEFAULT_DB_ALIAS] = current
        with _idle_lock:
            if healthy and len(_idle_connections) < MAX_IDLE_CONNECTIONS:
                _idle_connections.append(warm)
                warm = None
        if warm is not None:
            warm.close()


def do_track_event(*, data: Any, actor: Actor, source: str = "api") -> ItemResult:
    """Store one event (a batch of one); raises ValidationFailed with field paths if it is invalid."""
    if isinstance(data, dict) and data.get("type") == "identify":
        raise ValidationFailed(
            "Send identify calls to /identify or in a batch.",
            fields={"type": "identify is not an event type"},
        )
    result = do_ingest_batch(items=[data], actor=actor, source=source).results[0]
    if result.status == "error":
        raise ValidationFailed("The event is not valid.", fields=result.errors)
    return result


def _store_events(
    events: list[tuple[int, EventIn, list[tuple[str, str]]]], *, now: dt.datetime, actor: Actor, source: str
) -> list[ItemResult]:
    results: list[ItemResult] = []
    # A repeated id inside the batch is a duplicate of its first occurrence.
    first_of: dict[str, int] = {}
    unique: list[tuple[int, EventIn, list[tuple[str, str]]]] = []
    for index, item, identities in events:
        if item.event_id in first_of:
            results.append(ItemResult(index, "duplicate", item.type, item.event_id))
            continue
        first_of[item.event_id] = index
        unique.append((index, item, identities))

    known_seen: dict[int, dt.datetime | None] = {}
    owners = _resolve_owners({pair for _, _, ids in unique for pair in ids}, known_seen)
    failed = _create_missing_customers(unique, owners, actor=actor, source=source)

    rows = []
    customer_of: dict[int, int | None] = {}
    seen_at: dict[int, dt.datetime] = {}
    for index, item, identities in unique:
        if index in failed:
            results.append(ItemResult(index, "error", item.type, item.event_id, errors=failed[index]))
            continue
        customer_id = next((owners[p] for p in identities if p in owners), None)
        customer_of[index] = customer_id
        occurred = item.occurred_at or now
        if customer_id is not None:
            at = min(occurred, now)
            if at > seen_at.get(customer_id, at - dt.timedelta(seconds=1)):
                seen_at[customer_id] = at
        rows.append(
            (
                item.event_id,
                customer_id,
                item.anonymous_id or "",
                item.type,
                item.name,
                item.properties,
                item.context,
                occurred,
                now,
                source,
            )
        )

    statements = _insert_statements(rows)
    with _sqlite_writer_turn(), transaction.atomic():
        inserted = _insert_events(statements)
        _touch_seen(seen_at, known_seen)
    for index, item, _ in unique:
        if index in failed:
            continue
        status = "ok" if item.event_id in inserted else "duplicate"
        results.append(ItemResult(index, status, item.type, item.event_id, customer_of[index]))
    return results


_writer_lock = threading.Lock()
_lock_files: dict[str, int] = {}


# How many batches a server process writes between two checkpoints of the SQLite WAL.
CHECKPOINT_EVERY = 8


@contextlib.contextmanager
def _sqlite_writer_turn() -> Iterator[None]:
    """On SQLite, queue the batch writers of all server threads and processes on a lock, so that each
    starts its transaction the moment the previous one ends, and checkpoint the WAL outside that turn.

    SQLite has one writer at a time, and a connection that finds the database locked waits in SQLite's
    busy handler, which sleeps in steps of up to 100 ms however soon the lock is free. A thread lock
    orders the threads of one process and an `flock` on a file next to the database orders the
    processes; both wake the next writer at once. Other writers (console, imports) still meet the busy
    handler, as before.

    SQLite's automatic checkpoint (copying the WAL back into the database, with an fsync) runs inside
    the COMMIT of whichever transaction crosses 1,000 WAL pages, which is inside this turn: a 1,000-event
    batch writes about 500 pages, so every other batch held every writer up for the copy. The batch
    writer switches it off for its own transaction and runs a PASSIVE checkpoint (which never blocks
    writers or readers) after its turn, every CHECKPOINT_EVERY batches.

    PostgreSQL needs none of this: its row locks let batches write side by side.
    """
    global _batches_since_checkpoint  # noqa: PLW0603
    if connection.vendor != "sqlite" or connection.is_in_memory_db():
        yield
        return
    path = f"{connection.settings_dict['NAME']}-ingest.lock"
    connection.ensure_connection()
    raw = connection.connection
    (autocheckpoint,) = raw.execute("PRAGMA wal_autocheckpoint").fetchone()
    raw.execute("PRAGMA wal_autocheckpoint=0")
    try:
        with _writer_lock:
            fd = _lock_files.get(path)
            if fd is None:
                fd = _lock_files[path] = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
            _batches_since_checkpoint += 1
            checkpoint = _batches_since_checkpoint >= CHECKPOINT_EVERY
            if checkpoint:
                _batches_since_checkpoint = 0
        if checkpoint:
            raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    finally:
        raw.execute(f"PRAGMA wal_autocheckpoint={int(autocheckpoint)}")


_batches_since_checkpoint = 0


def _resolve_owners(
    pairs: set[tuple[str, str]], last_seen: dict[int, dt.datetime | None] | None = None
) -> dict[tuple[str, str], int]:
    """{(kind, value): customer id} for the known identities, in one query (merges followed).
    Fills `last_seen` with the owners' current last_seen_at, so unchanged ones are not updated."""
    if not pairs:
        return {}
    by_kind: dict[str, list[str]] = defaultdict(list)
    for kind, value in pairs:
        by_kind[kind].append(value)
    q = Q()
    for kind, values in by_kind.items():
        q |= Q(kind=kind, value__in=values)
    owners: dict[tuple[str, str], int] = {}
    merged: dict[tuple[str, str], int] = {}
    for kind, value, customer_id, status, merged_into, seen in Identity.objects.filter(q).values_list(
        "kind",
        "value",
        "customer_id",
        "customer__status",
        "customer__merged_into_id",
        "customer__last_seen_at",
    ):
        if last_seen is not None:
            last_seen[customer_id] = seen
        if merged_into and status == _MERGED:
            merged[(kind, value)] = merged_into
        else:
            owners[(kind, value)] = customer_id
    # An identity left on a merged-away profile belongs to the survivor (follow chains of merges).
    for pair, target in merged.items():
        for _ in range(10):
            row = Customer.objects.filter(pk=target).values_list("status", "merged_into_id").first()
            if row is None or row[0] != CustomerStatus.MERGED or not row[1]:
                break
            target = row[1]
        owners[pair] = target
    return owners


def _create_missing_customers(unique, owners, *, actor: Actor, source: str) -> dict[int, dict[str, str]]:
    """An event that names a person (user_id, email or phone) none of whose identities is known creates
    that customer (once per distinct set of identities). Events never link an anonymous id to a
    customer: only identify does that, deliberately. Returns errors by item index."""
    groups: dict[tuple[tuple[str, str], ...], list[int]] = defaultdict(list)
    for index, _item, identities in unique:
        if any(p in owners for p in identities):
            continue
        named = tuple(p for p in identities if p[0] != _ANONYMOUS)
        if named:
            groups[named].append(index)
    failed: dict[int, dict[str, str]] = {}
    for named, indexes in groups.items():
        if any(p in owners for p in named):  # created by an earlier group sharing one identity
            continue
        try:
            resolution = do_upsert_customer(identities=list(named), actor=actor, source=source)
        except EcrmError as exc:
            for index in indexes:
                failed[index] = exc.fields or {"body": exc.message}
            continue
        for pair in named:
            owners[pair] = resolution.customer.pk
    return failed


def _max_query_params() -> int:
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        return connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    if connection.vendor == "postgresql":
        return 65535
    return connection.features.max_query_params or 999


def _insert_statements(rows: list[tuple]) -> list[tuple[str, list[Any]]]:
    """The (sql, params) of the INSERTs for these rows, built before the write transaction starts: on
    SQLite every microsecond spent inside it holds up every other writer."""
    if not rows:
        return []
    ops = connection.ops
    if connection.vendor == "sqlite":

        def adapt_dt(value: dt.datetime) -> str:
            # What Django's SQLite backend stores (UTC, naive text), minus its per-call overhead.
            if value.utcoffset():
                value = value.astimezone(dt.UTC)
            return value.replace(tzinfo=None).isoformat(" ")
    else:
        adapt_dt = ops.adapt_datetimefield_value
    if connection.vendor == "postgresql":

        def adapt_json(value):
            return ops.adapt_json_value(value, None)
    else:

        def adapt_json(value):
            return orjson.dumps(value).decode()

    table = ops.quote_name(Event._meta.db_table)
    columns = ", ".join(ops.quote_name(c) for c in _EVENT_COLUMNS)
    mark = "?" if connection.vendor == "sqlite" else "%s"  # see _insert_events
    placeholder = "(" + ", ".join([mark] * len(_EVENT_COLUMNS)) + ")"
    key = ops.quote_name("event_id")
    on_conflict = f"ON CONFLICT ({key}) DO NOTHING RETURNING {key}"
    per_chunk = max(1, _max_query_params() // len(_EVENT_COLUMNS))
    statements = []
    for start in range(0, len(rows), per_chunk):
        chunk = rows[start : start + per_chunk]
        params: list[Any] = []
        received_cache: dict[dt.datetime, Any] = {}
        for event_id, customer_id, anon, typ, name, props, ctx, occurred, received, src in chunk:
            if received not in received_cache:
                received_cache[received] = adapt_dt(received)
            params += (
                event_id, customer_id, anon, typ, name, adapt_json(props), adapt_json(ctx),
                adapt_dt(occurred), received_cache[received], src,
            )  # fmt: skip
        # Only quoted identifiers and placeholders are interpolated; every value is a parameter.
        values = ", ".join([placeholder] * len(chunk))
        statements.append((f"INSERT INTO {table} ({columns}) VALUES {values} {on_conflict}", params))  # noqa: S608
    return statements


def _insert_events(statements: list[tuple[str, list[Any]]]) -> set[str]:
    """Run the INSERTs, skipping event ids already stored; returns the ids actually inserted.

    Not `bulk_create(ignore_conflicts=True)`: that cannot say which rows were skipped, so duplicates
    would need a SELECT first and two concurrent requests with the same id would both be told "ok".
    `ON CONFLICT DO NOTHING RETURNING` (SQLite >= 3.35, PostgreSQL) decides it inside the unique index,
    exactly, in one statement per chunk.
    """
    inserted: set[str] = set()
    if not statements:
        return inserted
    if connection.vendor == "sqlite":
        # The sqlite3 cursor itself, with `?` placeholders: Django's wrapper would rewrite the 10,000
        # placeholders of each statement with a regex, inside the write transaction.
        connection.ensure_connection()
        cursor = connection.connection.cursor()
        try:
            for sql, params in statements:
                inserted.update(row[0] for row in cursor.execute(sql, params).fetchall())
        finally:
            cursor.close()
        return inserted
    with connection.cursor() as cursor:
        for sql, params in statements:
            cursor.execute(sql, params)
            inserted.update(row[0] for row in cursor.fetchall())
    return inserted


def _touch_seen(seen_at: dict[int, dt.datetime], known: dict[int, dt.datetime | None]) -> None:
    """Move the customers' last_seen forward, in a bounded number of queries per batch.

    Times are floored to the minute and customers grouped by that minute; a backfill spread over many
    minutes is floored to the hour (then the day) instead, so a batch never costs more than a few
    UPDATEs. last_seen is a recency signal: a floor of at most a day on backfilled data is fine.
    """
    if not seen_at:
        return
    for floor in (_minute, _hour, _day):
        # Customers whose last_seen (read with their identities) is already that recent need no write.
        pending = {
            cid: at
            for cid, at in seen_at.items()
            if cid not in known or known[cid] is None or known[cid] < floor(at)
        }
        groups: dict[dt.datetime, list[int]] = defaultdict(list)
        for customer_id, at in pending.items():
            groups[floor(at)].append(customer_id)
        if len(groups) <= 4:
            break
    for at, ids in groups.items():
        do_touch_seen(ids, at)


def _minute(at: dt.datetime) -> dt.datetime:
    return at.replace(second=0, microsecond=0)


def _hour(at: dt.datetime) -> dt.datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def _day(at: dt.datetime) -> dt.datetime:
    return at.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def do_identify(
    *,
    anonymous_id: str | None = None,
    user_id: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    traits: dict[str, Any] | None = None,
    actor: Actor,
    source: str = "api",
    overwrite: bool = True,
    occurred_at: dt.datetime | None = None,
) -> IdentifyOutcome:
    """Resolve (or create) the customer these identities name, link the anonymous web id to them, and
    move the visitor's past anonymous events onto that customer.

    `overwrite=False` (browser tracking keys) only fills empty profile fields: a public key must not
    be able to rewrite a known customer's name or contact details.
    """
    cache = _IdentityCache()
    identities: list[tuple[str, str]] = []
    errors: dict[str, str] = {}
    for kind, raw in (
        (IdentityKind.EXTERNAL, user_id),
        (IdentityKind.EMAIL, email),
        (IdentityKind.PHONE, phone),
        (IdentityKind.ANONYMOUS, anonymous_id),
    ):
        if raw:
            try:
                identities.append((str(kind), cache.normalize(kind, raw)))
            except InvalidIdentifier as exc:
                errors[_FIELD_OF_KIND[kind]] = str(exc)
    if errors:
        raise ValidationFailed("Some identities are not valid.", fields=errors)
    traits = dict(traits or {})
    if not any(k != IdentityKind.ANONYMOUS for k, _ in identities) and not (
        traits.get("email") or traits.get("phone")
    ):
        raise ValidationFailed(
            "identify needs user_id, email or phone.",
            fields={"user_id": "identify needs user_id, email or phone"},
        )
    anon = identities[-1][1] if identities and identities[-1][0] == IdentityKind.ANONYMOUS else None
    now = timezone.now()
    with transaction.atomic():
        try:
            resolution = do_upsert_customer(
                identities=identities, traits=traits, actor=actor, source=source, overwrite=overwrite
            )
        except ValidationFailed as exc:
            # Trait errors are reported under `traits.` so the sender can find them.
            raise ValidationFailed(
                exc.message,
                fields={
                    (k if k.startswith("identities") else f"traits.{k}"): v for k, v in exc.fields.items()
                },
            ) from exc
        customer = resolution.customer
        moved = 0
        if anon:
            owner_id = _resolve_owners({(IdentityKind.ANONYMOUS.value, anon)}).get(
                (IdentityKind.ANONYMOUS.value, anon), customer.pk
            )
            moved = Event.objects.filter(anonymous_id=anon, customer__isnull=True).update(
                customer_id=owner_id
            )
            linked = (IdentityKind.ANONYMOUS.value, anon) in resolution.attached
            if linked or moved:
                record_audit(
                    actor=actor,
                    action="customer.identify",
                    obj=customer,
                    after={"anonymous_id": anon, "linked": linked, "events_moved": moved},
                )
        seen = min(occurred_at or now, now)
        do_touch_seen([customer.pk], seen)
    return IdentifyOutcome(
        customer=customer, created=resolution.created, events_moved=moved, attached=list(resolution.attached)
    )
