"""OCI values: digests, descriptors, platforms, references, configs, manifests, indexes, and
what every layer and blob stream is (the protocols the floors above implement)."""

from .._public import publish
from . import _mediatypes as media_types
from ._config import ContainerConfig, HistoryEntry, ImageConfig
from ._descriptor import Descriptor, Platform
from ._digest import Digest
from ._layer import BlobStream, Layer, LayerDigests
from ._manifest import Index, Manifest, describe, parse_manifest_or_index
from ._reference import Reference

__all__ = [
    "BlobStream",
    "ContainerConfig",
    "Descriptor",
    "Digest",
    "HistoryEntry",
    "ImageConfig",
    "Index",
    "Layer",
    "LayerDigests",
    "Manifest",
    "Platform",
    "Reference",
    "describe",
    "media_types",
    "parse_manifest_or_index",
]

publish(__name__, globals(), __all__)
