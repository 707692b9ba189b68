"""CSV importers, one module per kind. `IMPORTERS` is the registry the import jobs use."""

from __future__ import annotations

from ..base import Importer
from .customers import CustomersImporter
from .order_lines import OrderLinesImporter
from .orders import OrdersImporter
from .products import ProductsImporter

IMPORTERS: dict[str, type[Importer]] = {
    cls.kind: cls for cls in (CustomersImporter, ProductsImporter, OrdersImporter, OrderLinesImporter)
}


def importer_for(kind: str) -> type[Importer]:
    try:
        return IMPORTERS[kind]
    except KeyError:
        raise ValueError(f"unknown import kind {kind!r}; use one of {', '.join(IMPORTERS)}") from None
