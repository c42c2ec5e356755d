"""How public modules claim the names they export (as httpx does)."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterable, Mapping

__all__ = ["lazy_names", "publish"]


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


def lazy_names(
    package: str, homes: Mapping[str, str], *, claim: bool = False
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__`` (PEP 562) for names that load with their
    modules, so importing the package costs only what it uses.

    ``homes`` maps each name to its module, absolute or relative to ``package`` (``._copy``).
    The first lookup imports that module and keeps the value in the package, so later lookups
    are plain attributes; with ``claim`` the name also reports ``package`` as its home
    (:func:`publish`).
    """

    def __getattr__(name: str) -> object:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        import importlib

        value = getattr(importlib.import_module(homes[name], package), name)
        if claim:
            publish(package, {name: value}, [name])
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        namespace = vars(sys.modules[package])
        return sorted({*namespace, *namespace.get("__all__", ())})

    return __getattr__, __dir__
