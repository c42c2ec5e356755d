"""Image operations: the image value, and reading, writing, copying and inspecting images."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._public import lazy_names

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
    "copy": "._copy",
    **dict.fromkeys(["Image", "Loaded", "SourceLayer", "load", "load_image"], "._image"),
    **dict.fromkeys(["InspectReport", "inspect"], "._inspect"),
    **dict.fromkeys(["WriteResult", "write"], "._write"),
}


__getattr__, __dir__ = lazy_names(__name__, _HOMES)
