"""The importer contract: what every source adapter (one module per kind under `sources/<format>/`)
implements, and the value parsers they share.

An importer sees the file as a stream of rows already renamed to its field names (the column
mapping is applied before it). It does two things:

* `clean(values)` turns one row of strings into typed values or raises `RowRefused` with a reason
  a shop owner can act on ("total: 'abc' is not a number");
* `write(rows)` stores one chunk of clean rows with set-based look-ups and bulk writes, and
  returns how many were created or updated and which rows were refused (for example an order line
  whose order does not exist). It runs inside the chunk's transaction.

Importers keep no per-row state between chunks beyond what they declare (`OrderLinesImporter`
keeps one counter per order), so a file of any length imports in bounded memory.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from django.utils import timezone


class RowRefused(ValueError):
    """This row cannot be imported; the message says why."""


@dataclass(frozen=True)
class Field:
    """One field an importer understands, with the header names that map to it automatically."""

    name: str
    label: str
    aliases: tuple[str, ...] = ()
    required: bool = False
    help: str = ""


@dataclass
class CleanRow:
    """A row that passed `clean`: its spreadsheet row number (header = row 1) and typed values."""

    row_no: int
    data: dict[str, Any]


@dataclass
class ChunkResult:
    """What writing one chunk did."""

    created: int = 0
    updated: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)  # (row_no, reason)

    def add(self, other: ChunkResult) -> None:
        self.created += other.created
        self.updated += other.updated
        self.refused.extend(other.refused)


def header_key(name: str) -> str:
    """Fold a header cell for alias matching: 'Order Number ' -> 'order_number', '订单号' stays."""
    text = unicodedata.normalize("NFKC", name or "").strip().lower()
    text = re.sub(r"[\s\-./]+", "_", text)
    return text.strip("_")


class Importer:
    """Base class for one kind of import. Subclasses declare `kind`, `fields`, and implement
    `clean` and `write`."""

    kind: ClassVar[str]
    fields: ClassVar[tuple[Field, ...]]
    # Mapped fields of which at least one must be present (e.g. some way to identify a customer).
    one_of: ClassVar[tuple[tuple[str, ...], ...]] = ()

    def __init__(self, *, actor: Any = None, source: str = "import") -> None:
        self.actor = actor
        self.source = source

    # --- mapping -------------------------------------------------------------------------------
    @classmethod
    def available_fields(cls) -> list[Field]:
        """The fields a column can map to (importers with dynamic fields override this)."""
        return list(cls.fields)

    @classmethod
    def suggest_mapping(cls, header: list[str]) -> dict[str, str]:
        """{column: field} for every column whose name is a field name or a known alias; a field is
        taken by the first column that names it, and unknown columns map to '' (ignored)."""
        lookup: dict[str, str] = {}
        for f in cls.available_fields():
            for alias in (f.name, *f.aliases):
                lookup.setdefault(header_key(alias), f.name)
        taken: set[str] = set()
        mapping: dict[str, str] = {}
        for column in header:
            target = lookup.get(header_key(column), "")
            if target in taken:
                target = ""
            if target:
                taken.add(target)
            mapping[column] = target
        return mapping

    @classmethod
    def check_mapping(cls, mapping: dict[str, str]) -> dict[str, str]:
        """Problems with a mapping, as {column or '__all__': message}; empty when it is usable."""
        known = {f.name for f in cls.available_fields()}
        problems: dict[str, str] = {}
        seen: dict[str, str] = {}
        for column, target in mapping.items():
            if not target:
                continue
            if target not in known:
                problems[column] = f"'{target}' is not a field of a {cls.kind} import"
            elif target in seen:
                problems[column] = f"'{target}' is already mapped from column '{seen[target]}'"
            else:
                seen[target] = column
        missing = [f.label for f in cls.available_fields() if f.required and f.name not in seen]
        if missing:
            problems["__all__"] = "Map a column to: " + ", ".join(missing)
        for group in cls.one_of:
            if not any(name in seen for name in group):
                labels = [f.label for f in cls.available_fields() if f.name in group]
                problems.setdefault("__all__", "Map a column to at least one of: " + ", ".join(labels))
        return problems

    # --- rows ------------------------------------------------------------------------------------
    def clean(self, values: dict[str, str]) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def write(self, rows: list[CleanRow]) -> ChunkResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def forget_last_write(self) -> None:
        """The last `write` was rolled back: undo whatever state it kept between chunks."""


# --- value parsers shared by the importers -----------------------------------------------------------

_MONEY_JUNK = re.compile(r"[\s,¥￥$€£]|CNY|RMB|USD|EUR|元", re.IGNORECASE)


def parse_decimal(value: str, *, label: str, places: int = 2, allow_negative: bool = False) -> Decimal:
    text = _MONEY_JUNK.sub("", value)
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise RowRefused(f"{label}: {value!r} is not a number") from None
    if not number.is_finite():
        raise RowRefused(f"{label}: {value!r} is not a number")
    if number < 0 and not allow_negative:
        raise RowRefused(f"{label}: {value!r} must not be negative")
    quantum = Decimal(1).scaleb(-places)
    rounded = number.quantize(quantum)
    if abs(rounded) >= Decimal(10) ** (12 if places == 2 else 9):
        raise RowRefused(f"{label}: {value!r} is too large")
    return rounded


_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d", "%d.%m.%Y")
_DATETIME_FORMATS = ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y.%m.%d %H:%M:%S", "%d.%m.%Y %H:%M")


def parse_date(value: str, *, label: str) -> dt.date:
    text = value.strip()
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).date()  # noqa: DTZ007 - a calendar date, no time zone
        except ValueError:
            continue
    raise RowRefused(f"{label}: {value!r} is not a date (use YYYY-MM-DD)")


def parse_datetime(value: str, *, label: str) -> dt.datetime:
    """ISO 8601 and the usual spreadsheet forms; a time without a zone is in the shop's TIME_ZONE."""
    text = value.strip()
    parsed: dt.datetime | None = None
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        for fmt in _DATETIME_FORMATS:
            try:
                parsed = dt.datetime.strptime(text, fmt)  # noqa: DTZ007 - made aware just below
                break
            except ValueError:
                continue
        if parsed is None:
            try:
                parsed = dt.datetime.combine(parse_date(text, label=label), dt.time())
            except RowRefused:
                raise RowRefused(f"{label}: {value!r} is not a date and time (use YYYY-MM-DD HH:MM:SS)") from None
    if timezone.is_naive(parsed):
        try:
            parsed = timezone.make_aware(parsed, timezone.get_current_timezone())
        except (ValueError, OverflowError):  # a wall-clock time that does not exist (DST gap)
            raise RowRefused(f"{label}: {value!r} does not exist in time zone {timezone.get_current_timezone_name()}") from None
    return parsed


def parse_text(value: str, *, max_length: int) -> str:
    return " ".join(value.split())[:max_length]
