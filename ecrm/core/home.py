"""Home-page figures: apps register small providers; values are cached briefly because counting a
million-row table on every page view is wasted work."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.cache import cache

from .permissions import has_perm

CACHE_SECONDS = 60


def cached_figure(
    key: str, capability: str, label: str, url: str, compute: Callable[[], Any]
) -> Callable[[Any], dict | None]:
    """A provider for `register_home_figure`: shown to users with `capability`, value cached."""

    def provider(user: Any) -> dict | None:
        if not has_perm(user, capability):
            return None
        value = cache.get(f"home:{key}")
        if value is None:
            value = compute()
            cache.set(f"home:{key}", value, CACHE_SECONDS)
        return {"label": label, "value": value, "url": url}

    return provider
