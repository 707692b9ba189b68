"""Demo data: a believable shop for `manage.py seed` (catalogue, customers, orders, web sessions,
duplicates for the merge queue). It lives in `ingest`, the top layer, so it may write every model."""

from .seed import SeedRefused, SeedReport, seed_demo

__all__ = ["SeedRefused", "SeedReport", "seed_demo"]
