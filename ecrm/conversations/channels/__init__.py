"""Channel adapters: one folder per kind (`channels/<kind>/adapter.py`), each a `ChannelAdapter`.

`load_adapters()` imports every adapter module so it registers itself; the rest of the app only ever
calls `get_adapter(kind)`.
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import ChannelAdapter, DeliveryError, adapters, get_adapter, register_adapter

__all__ = ["ChannelAdapter", "DeliveryError", "adapters", "get_adapter", "load_adapters", "register_adapter"]


def load_adapters() -> None:
    for info in pkgutil.iter_modules(__path__):
        if info.ispkg:
            try:
                importlib.import_module(f"{__name__}.{info.name}.adapter")
            except ModuleNotFoundError as exc:
                if exc.name != f"{__name__}.{info.name}.adapter":
                    raise
