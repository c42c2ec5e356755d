"""Layers: what a layer is, and the kinds built here (local files, tarballs).

A file tree becomes a blob in one pass (walk -> tar -> diff_id -> compress -> digest), and the
layer cache remembers the digests of trees that did not change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._public import lazy_names

if TYPE_CHECKING:
    from ..oci._layer import BlobStream, Layer, LayerDigests
    from ._cache import LayerCache, default_cache_dir
    from ._compress import Compression, decompress_stream, detect_compression
    from ._filetree import FileTreeLayer
    from ._options import LayerOptions
    from ._pipeline import build_blob
    from ._tar import TarOptions, tar_stream
    from ._tarball import TarballLayer
    from ._tree import Entry, Source, walk

__all__ = [
    "BlobStream",
    "Compression",
    "Entry",
    "FileTreeLayer",
    "Layer",
    "LayerCache",
    "LayerDigests",
    "LayerOptions",
    "Source",
    "TarOptions",
    "TarballLayer",
    "build_blob",
    "default_cache_dir",
    "decompress_stream",
    "detect_compression",
    "tar_stream",
    "walk",
]

# Each name loads with its module (PEP 562) and claims this package as its home then: a file
# tree append must not pay for the tarball reader.
_HOMES = {
    **dict.fromkeys(["BlobStream", "Layer", "LayerDigests"], "ocibuild.oci._layer"),
    **dict.fromkeys(["LayerCache", "default_cache_dir"], f"{__name__}._cache"),
    **dict.fromkeys(
        ["Compression", "decompress_stream", "detect_compression"], f"{__name__}._compress"
    ),
    "FileTreeLayer": f"{__name__}._filetree",
    "LayerOptions": f"{__name__}._options",
    "build_blob": f"{__name__}._pipeline",
    **dict.fromkeys(["TarOptions", "tar_stream"], f"{__name__}._tar"),
    "TarballLayer": f"{__name__}._tarball",
    **dict.fromkeys(["Entry", "Source", "walk"], f"{__name__}._tree"),
}


__getattr__, __dir__ = lazy_names(__name__, _HOMES, claim=True)
