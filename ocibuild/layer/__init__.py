"""Layers: what a layer is, and the kinds built here (local files, tarballs).

A file tree becomes a blob in one pass (walk -> tar -> diff_id -> compress -> digest), and the
layer cache remembers the digests of trees that did not change.
"""

from .._public import publish
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

publish(__name__, globals(), __all__)
