"""How public modules claim the names they export (as httpx does)."""

from __future__ import annotations

import types
from collections.abc import Iterable, Mapping

__all__ = ["publish"]


def publish(home: str, namespace: Mapping[str, object], names: Iterable[str]) -> None:
    """Make each class and function of ``names`` report ``home`` as its ``__module__``.

    Only names still claimed by a private module (one with a ``_`` component) move, so a
    name re-exported by a second public module keeps its first, more specific home.
    """
    for name in names:
        obj = namespace[name]
        if not isinstance(obj, (type, types.FunctionType)):
            continue
        if any(part.startswith("_") for part in obj.__module__.split(".")):
            obj.__module__ = home
