"""The preview of a mapped file: its first rows as they would be imported, each validated.

Rows are cleaned by the importer and then written inside a transaction that is rolled back, so
the preview also catches what only the database knows (an order line whose order does not exist).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import DatabaseError, transaction

from ..models import ImportJob
from ..sources.base import CleanRow, RowRefused
from ..sources.csv import importer_for
from ..sources.reader import open_csv
from .runner import column_plan

PREVIEW_ROWS = 20
# Clean values stored under another name than the field they came from.
_RENAMED = {"external_id": "order_id", "order_external_id": "order_id"}


class _Rollback(Exception):
    pass


@dataclass
class PreviewRow:
    """One previewed row: its number, the value per mapped field, and why it would be refused."""

    row_no: int
    values: list[str]
    error: str = ""


def _display(data: dict[str, Any]) -> dict[str, str]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and key != "custom_attributes":
            flat.update(value)
        elif key == "custom_attributes":
            flat.update({f"custom.{k}": v for k, v in value.items()})
        else:
            flat[_RENAMED.get(key, key)] = value
    out = {}
    for key, value in flat.items():
        if isinstance(value, list):
            value = "; ".join(map(str, value))
        elif isinstance(value, Decimal):
            value = format(value, "f")
        elif hasattr(value, "isoformat"):
            value = value.isoformat(sep=" ") if hasattr(value, "hour") else value.isoformat()
        out[key] = "" if value is None else str(value)
    return out


def preview_import(job: ImportJob, *, limit: int = PREVIEW_ROWS) -> tuple[list[str], list[PreviewRow]]:
    """(mapped field names in column order, the first `limit` rows)."""
    importer = importer_for(job.kind)(actor=job.created_by, source=f"import:{job.pk}")
    with open_csv(job.source_path or job.file.path) as source:
        plan = column_plan(source.header, job.mapping)
        fields = [name for _, name in plan]
        rows: list[PreviewRow] = []
        clean: list[CleanRow] = []
        for row_no, cells in source.rows():
            raw = {name: (cells[index].strip() if index < len(cells) else "") for index, name in plan}
            try:
                data = importer.clean(raw)
            except RowRefused as exc:
                rows.append(PreviewRow(row_no, [raw[f] for f in fields], str(exc)))
            else:
                shown = _display(data)
                rows.append(PreviewRow(row_no, [shown.get(f, raw[f]) for f in fields]))
                clean.append(CleanRow(row_no, data))
            if len(rows) >= limit:
                break
    refused: dict[int, str] = {}
    try:
        with transaction.atomic():
            refused = dict(importer.write(clean).refused) if clean else {}
            raise _Rollback
    except _Rollback:
        pass
    except DatabaseError as exc:
        refused = {row.row_no: f"could not be stored: {exc}" for row in clean}
    for row in rows:
        if row.row_no in refused:
            row.error = refused[row.row_no]
    return fields, rows
