"""Image operations: the image value, and reading, writing, copying and inspecting images."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._copy import copy
    from ._image import Image, Loaded, SourceLayer, load, load_image
    from ._inspect import InspectReport, inspect
    from ._write import WriteResult, write

__all__ = [
    "Image",
    "InspectReport",
    "Loaded",
    "SourceLayer",
    "WriteResult",
    "copy",
    "inspect",
    "load",
    "load_image",
    "write",
]

# Each name loads with its module (PEP 562): an append reads and writes images, and must not
# pay for copying or inspecting them.
_HOMES = {
    "copy": "_copy",
    **dict.fromkeys(["Image", "Loaded", "SourceLayer", "load", "load_image"], "_image"),
    **dict.fromkeys(["InspectReport", "inspect"], "_inspect"),
    **dict.fromkeys(["WriteResult", "write"], "_write"),
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
