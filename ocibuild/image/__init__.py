"""Image operations: the image value, and reading, writing, copying and inspecting images."""

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
